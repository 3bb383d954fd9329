// What a running lab consists of, persisted so that later commands (status, kill-agent, down) and a lab left
// behind by a crash can be found and cleaned up.
import { readTextFile, writeFileAtomic } from "#lib/files.js";

export interface NodeState {
  readonly index: number;
  agentPid?: number | undefined;
  /** Size of the agent log when this agent started: readiness is read from what it wrote after. */
  logOffset?: number | undefined;
  /** The node's cluster DNS server (`trellis-agent dns`). */
  dnsPid?: number | undefined;
  dnsLogOffset?: number | undefined;
}

export interface PodState {
  /** Also the pod's namespace and container ID. */
  readonly name: string;
  readonly node: number;
  /** The pod's address: IPv4, or IPv6 on an IPv6-only network. */
  readonly ip: string;
  /** Its IPv6 address on a dual-stack network. */
  readonly ip6?: string | undefined;
  /** The pod's HTTP server, when it runs one. */
  httpPid?: number | undefined;
  /** Its port (80 unless a manifest's containerPort says otherwise). */
  httpPort?: number | undefined;
  /** The Kubernetes identity its runtime passed (K8S_POD_NAMESPACE, K8S_POD_NAME, labels). */
  kube?:
    | { readonly namespace: string; readonly name: string; readonly labels: Readonly<Record<string, string>> }
    | undefined;
  /** The Deployment it belongs to (`scripts/lab apply`). */
  owner?: string | undefined;
  createdAt?: string | undefined;
}

export type IpFamilies = "ipv4" | "dual" | "ipv6";

export interface LabState {
  readonly prefix: string;
  readonly backend: "vxlan" | "host-gw";
  readonly directRouting: boolean;
  /** The pod networks' families: IPv4 (default), dual-stack, or IPv6 only. */
  readonly ipFamily?: IpFamilies | undefined;
  /** etcd members in the underlay namespace; pid undefined while stopped. */
  readonly etcd: { readonly name: string; pid: number | undefined }[];
  readonly etcdEndpoints: string[];
  readonly nodes: NodeState[];
  readonly pods: PodState[];
  /** The stand-in for the nodes' upstream resolver, in the underlay namespace (lab/src/fake-dns-upstream.ts). */
  upstreamPid?: number | undefined;
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
