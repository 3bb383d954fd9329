// Each lab node's configuration is rendered by deploy/render-node-config — the script the Vagrant VMs (through
// scripts/install) use — so the lab runs exactly what a real node installs: agent.env, the conflist, the unit.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { REPO_ROOT } from "./paths.js";
import { run } from "./exec.js";
import type { NodeLayout } from "./layout.js";

export interface NodeSettings {
  readonly etcdEndpoints: readonly string[];
  readonly iface: string;
  readonly subnetFile: string;
  readonly cniDataDir: string;
  /** The agent's CNI service: nodes share the filesystem, so each its own (conflist and agent.env agree). */
  readonly cniSocket: string;
  /** The plugin's pod records, which the node's agent publishes as Service endpoints: nodes share the filesystem. */
  readonly podRecordDir: string;
  /** The agent executable the unit starts. */
  readonly agentBin: string;
  /** The DNS server's upstream resolvers (the lab's stand-in, never the host's). */
  readonly resolvConf: string;
  /** Further TRELLIS_* settings (lease TTL, intervals, log format). */
  readonly extra: Readonly<Record<string, string>>;
}

export async function renderNodeConfig(node: NodeLayout, settings: NodeSettings): Promise<void> {
  const args = [
    "--out",
    node.dir,
    "--etcd-endpoints",
    settings.etcdEndpoints.join(","),
    "--iface",
    settings.iface,
    "--subnet-file",
    settings.subnetFile,
    "--cni-data-dir",
    settings.cniDataDir,
    "--cni-socket",
    settings.cniSocket,
    "--pod-record-dir",
    settings.podRecordDir,
    "--agent-bin",
    settings.agentBin,
    "--resolv-conf",
    settings.resolvConf,
    ...Object.entries(settings.extra).flatMap(([key, value]) => ["--set", `${key}=${value}`]),
  ];
  await run(join(REPO_ROOT, "deploy/render-node-config"), args);
}

const LINE = /^(TRELLIS_[A-Z0-9_]+)=(?:"((?:[^"\\]|\\.)*)"|(.*))$/;

/** The TRELLIS_* variables of a rendered agent.env (systemd EnvironmentFile syntax as render-node-config writes it). */
export function readAgentEnv(node: NodeLayout): Promise<Record<string, string>> {
  return readEnvFile(join(node.dir, "agent.env"));
}

/** The TRELLIS_* variables of a rendered environment file (agent.env, dns.env). */
export async function readEnvFile(path: string): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const line of (await readFile(path, "utf8")).split("\n")) {
    const match = LINE.exec(line);
    if (match?.[1] === undefined) continue;
    env[match[1]] = match[2] === undefined ? (match[3] ?? "") : match[2].replace(/\\(.)/g, "$1");
  }
  return env;
}
