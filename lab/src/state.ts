// What a running lab consists of, persisted so that later commands (status, kill-agent, down) and a lab left
// behind by a crash can be found and cleaned up.
import { readTextFile, writeFileAtomic } from "../../lib/src/files.js";

export interface NodeState {
  readonly index: number;
  agentPid?: number | undefined;
  /** Size of the agent log when this agent started: readiness is read from what it wrote after. */
  logOffset?: number | undefined;
}

export interface PodState {
  /** Also the pod's namespace and container ID. */
  readonly name: string;
  readonly node: number;
  readonly ip: string;
  /** The pod's HTTP server, when it runs one. */
  httpPid?: number | undefined;
}

export interface LabState {
  readonly prefix: string;
  readonly backend: "vxlan" | "host-gw";
  readonly directRouting: boolean;
  /** etcd members in the underlay namespace; pid undefined while stopped. */
  readonly etcd: { readonly name: string; pid: number | undefined }[];
  readonly etcdEndpoints: string[];
  readonly nodes: NodeState[];
  readonly pods: PodState[];
  readonly createdAt: string;
}

export async function readState(path: string): Promise<LabState | undefined> {
  const text = await readTextFile(path).catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as LabState;
  } catch {
    return undefined; // a torn or foreign file: down() falls back to finding things by prefix
  }
}

export async function writeState(path: string, state: LabState): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(state, null, 2)}\n`);
}
