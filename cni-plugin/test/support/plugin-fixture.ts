// One "node" per test file: a namespace where the real plugin executable runs (via `ip netns exec`, as a runtime
// on that node would), a temp dir with the subnet.env this file writes, and pod namespaces — all removed in after().
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runStatus } from "../../../lab/src/exec.js";
import { ipIn, NamespaceSet } from "../../../lab/src/netns.js";
import { CNI_BIN } from "../../../lab/src/paths.js";

export const SUBNET_ENV =
  "FLANNEL_NETWORK=172.30.0.0/16\nFLANNEL_SUBNET=172.30.5.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";

export interface Invocation {
  containerId?: string;
  /** A pod namespace name (→ /run/netns/<name>) or a path. */
  netns?: string;
  ifname?: string;
  /** The config object (or raw stdin text). */
  config?: Record<string, unknown> | string;
  env?: Record<string, string>;
}

export interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
  json: Record<string, unknown> | undefined;
}

export class PluginFixture {
  readonly namespaces = new NamespaceSet();
  nodeNs = "";
  dir = "";

  /** The node's lease as the agent would write it: IPv4 (the default), dual-stack or IPv6-only. */
  constructor(readonly subnetEnv = SUBNET_ENV) {}

  get subnetFile(): string {
    return join(this.dir, "subnet.env");
  }

  get dataDir(): string {
    return join(this.dir, "ipam");
  }

  async setup(): Promise<void> {
    this.nodeNs = await this.namespaces.add();
    this.dir = await mkdtemp(join(tmpdir(), "trellis-cni-"));
    await writeFile(this.subnetFile, this.subnetEnv);
  }

  async dispose(): Promise<void> {
    await this.namespaces.dispose();
    if (this.dir !== "") await rm(this.dir, { recursive: true, force: true });
  }

  /** A fresh pod namespace; returns its name. */
  async pod(): Promise<string> {
    return await this.namespaces.add();
  }

  config(cniVersion = "1.0.0", extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      cniVersion,
      name: "trellis-test",
      type: "trellis",
      subnetFile: this.subnetFile,
      dataDir: this.dataDir,
      ...extra,
    };
  }

  async invoke(command: string, inv: Invocation = {}): Promise<Outcome> {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      CNI_COMMAND: command,
      CNI_PATH: "/usr/lib/cni",
    };
    if (inv.containerId !== undefined) env.CNI_CONTAINERID = inv.containerId;
    if (inv.ifname !== undefined) env.CNI_IFNAME = inv.ifname;
    if (inv.netns !== undefined) env.CNI_NETNS = inv.netns.startsWith("/") ? inv.netns : `/run/netns/${inv.netns}`;
    Object.assign(env, inv.env ?? {});
    const config = inv.config ?? this.config();
    const input = typeof config === "string" ? config : JSON.stringify(config);
    const out = await runStatus("ip", ["netns", "exec", this.nodeNs, CNI_BIN], { input, env, timeoutMs: 60_000 });
    let json: Record<string, unknown> | undefined;
    try {
      json = out.stdout.trim() === "" ? undefined : (JSON.parse(out.stdout) as Record<string, unknown>);
    } catch {
      json = undefined;
    }
    return { ...out, json };
  }

  /** Exactly this environment (plus PATH) and stdin. */
  async invokeRaw(
    env: Record<string, string>,
    stdin: string,
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    return await runStatus("ip", ["netns", "exec", this.nodeNs, CNI_BIN], {
      input: stdin,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
      timeoutMs: 60_000,
    });
  }

  /** ADD that must succeed; returns the result. */
  async add(
    pod: string,
    containerId = pod,
    extra: { ifname?: string; version?: string; config?: Record<string, unknown> } = {},
  ): Promise<Record<string, unknown>> {
    const out = await this.invoke("ADD", {
      containerId,
      netns: pod,
      ifname: extra.ifname ?? "eth0",
      config: extra.config ?? this.config(extra.version),
    });
    if (out.code !== 0 || out.json === undefined)
      throw new Error(`ADD failed (${out.code}): ${out.stdout} ${out.stderr}`);
    return out.json;
  }

  /** Reserved addresses in the IPAM store (file names that are addresses, IPv6 ones with a ":"). */
  async reservations(): Promise<string[]> {
    const names = await readdir(this.dataDir).catch(() => []);
    return names.filter((n) => /^\d+\.\d+\.\d+\.\d+$/.test(n) || /^[0-9a-f:]+$/.test(n)).sort();
  }

  /** Link names in the node namespace matching veth+8 hex. */
  async hostVeths(): Promise<string[]> {
    const { stdout } = await ipIn(this.nodeNs, "-j", "link", "show");
    return (JSON.parse(stdout) as { ifname: string }[]).map((l) => l.ifname).filter((n) => /^veth[0-9a-f]{8}$/.test(n));
  }
}

/** Mocha hooks around a fixture. */
export function usePluginFixture(subnetEnv?: string): PluginFixture {
  const fixture = new PluginFixture(subnetEnv);
  before(async () => {
    await fixture.setup();
  });
  after(async () => {
    await fixture.dispose();
  });
  return fixture;
}

export async function ipJson<T>(ns: string, ...args: string[]): Promise<T> {
  const { stdout } = await ipIn(ns, "-j", ...args);
  return JSON.parse(stdout) as T;
}
