// A node namespace whose agent serves only the CNI plugin: no etcd answers (the agent keeps waiting for its network
// config, while its CNI service is up from the start), the subnet file is written by the test. Enough to drive the
// real shim → agent path, and to stop, resume or break the agent, without a lab. Everything is removed in after().
import { readFileSync } from "node:fs";
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDetached, stopPid, pidAlive } from "../../lab/src/exec.js";
import { httpGetIn } from "../../lab/src/http-get.js";
import { ipIn, NamespaceSet } from "../../lab/src/netns.js";
import { AGENT_BIN, CNI_BIN } from "../../lab/src/paths.js";
import { runStatus } from "../../lab/src/exec.js";
import { waitFor } from "../../lab/src/ports.js";

export const SUBNET_ENV =
  "FLANNEL_NETWORK=172.30.0.0/16\nFLANNEL_SUBNET=172.30.5.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n";
const AGENT_CMD = /agent\/bin\/agent/;
const METRICS_PORT = 9808;

export class BareAgentNode {
  readonly namespaces = new NamespaceSet();
  ns = "";
  dir = "";
  pid: number | undefined;

  get socket(): string {
    return join(this.dir, "cni.sock");
  }

  get log(): string {
    return join(this.dir, "agent.log");
  }

  async setup(): Promise<void> {
    this.ns = await this.namespaces.add();
    this.dir = await mkdtemp(join(tmpdir(), "trellis-bare-agent-"));
    await chmod(this.dir, 0o755); // the CNI socket's directory: ours, writable by nobody else
    await writeFile(join(this.dir, "subnet.env"), SUBNET_ENV);
    // An underlay interface with an address: the agent chooses it before it waits for etcd.
    await ipIn(this.ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p");
    await ipIn(this.ns, "addr", "add", "10.77.0.2/24", "dev", "eth0");
    for (const link of ["eth0", "eth0p"]) await ipIn(this.ns, "link", "set", link, "up");
  }

  /** Starts the agent; `env` adds to its environment (LD_PRELOAD for fault injection). Resolves once it serves CNI. */
  async start(env: Record<string, string> = {}): Promise<void> {
    const settings = {
      TRELLIS_ETCD_ENDPOINTS: "http://127.0.0.1:2", // nothing listens: the agent waits for its config
      TRELLIS_IFACE: "eth0",
      TRELLIS_SUBNET_FILE: join(this.dir, "agent-subnet.env"),
      TRELLIS_CNI_SOCKET: this.socket,
      TRELLIS_IP_MASQ: "false",
      TRELLIS_HEALTHZ_PORT: String(METRICS_PORT),
      TRELLIS_LOG_FORMAT: "text",
    };
    const offset = await stat(this.log).then(
      (info) => info.size,
      () => 0,
    );
    // Under sh, so that the log also tells how the agent exited.
    const script = '"$0" run; echo "agent exited with $?"';
    this.pid = startDetached("ip", ["netns", "exec", this.ns, "sh", "-c", script, AGENT_BIN], this.log, {
      ...process.env,
      ...settings,
      ...env,
    });
    const fresh = async (): Promise<string> =>
      (await readFile(this.log).catch(() => Buffer.alloc(0))).subarray(offset).toString("utf8");
    await waitFor("the agent's CNI service", async () => /serving the CNI plugin's shim/.test(await fresh()), 15_000);
  }

  async stop(): Promise<void> {
    const agent = this.agentPid();
    if (agent !== undefined) await stopPid(agent, AGENT_CMD, 5000);
    if (this.pid !== undefined) await stopPid(this.pid, /sh -c/, 2000);
    this.pid = undefined;
  }

  /** The agent (under its sh) is alive. */
  get running(): boolean {
    const agent = this.agentPid();
    return agent !== undefined && pidAlive(agent);
  }

  /** Signals the agent itself (not the sh around it). */
  signal(signal: NodeJS.Signals): void {
    const agent = this.agentPid();
    if (agent !== undefined) process.kill(agent, signal);
  }

  private agentPid(): number | undefined {
    if (this.pid === undefined) return undefined;
    let children: string[];
    try {
      children = readFileSync(`/proc/${this.pid}/task/${this.pid}/children`, "utf8")
        .trim()
        .split(/\s+/)
        .filter((p) => p !== "");
    } catch {
      return undefined; // the sh is gone too
    }
    return children.length === 0 ? undefined : Number(children[0]);
  }

  /** The plugin's config as the node's conflist would give it. */
  config(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      cniVersion: "1.0.0",
      name: "bare",
      type: "trellis",
      subnetFile: join(this.dir, "subnet.env"),
      dataDir: join(this.dir, "ipam"),
      agentSocket: this.socket,
      ...extra,
    };
  }

  /** The installed plugin run in the node as a runtime runs it; `wrap` goes before it (unshare, sh -c …). */
  async cni(
    command: string,
    env: Record<string, string>,
    config = this.config(),
    wrap: string[] = [],
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    const all = {
      PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
      CNI_COMMAND: command,
      CNI_PATH: "/usr/lib/cni",
      CNI_IFNAME: "eth0",
      ...env,
    };
    return await runStatus("ip", ["netns", "exec", this.ns, ...wrap, ...(wrap.length > 0 ? [] : [CNI_BIN])], {
      input: JSON.stringify(config),
      env: all,
      timeoutMs: 60_000,
    });
  }

  /** A counter from the agent's /metrics (0 when absent). */
  async metric(name: string): Promise<number> {
    const answer = await httpGetIn(this.ns, `http://127.0.0.1:${METRICS_PORT}/metrics`);
    const line = answer.body.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    return line === undefined ? 0 : Number(line.split(" ").pop());
  }

  async dispose(): Promise<void> {
    await this.stop();
    await this.namespaces.dispose();
    if (this.dir !== "") await rm(this.dir, { recursive: true, force: true });
  }
}

export function useBareAgentNode(): BareAgentNode {
  const node = new BareAgentNode();
  before(async function () {
    this.timeout(30_000);
    await node.setup();
  });
  after(async function () {
    this.timeout(30_000);
    await node.dispose();
  });
  return node;
}

export { CNI_BIN };
