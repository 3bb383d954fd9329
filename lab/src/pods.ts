// Pods for the lab and the end-to-end tests: a pod is a network namespace wired by the node's CNI chain through
// the libcni-like runtime, as kubelet's runtime would. Plain parameters only (no dependency on lab.ts).
import { readFile } from "node:fs/promises";
import { CniRuntime, type ConfList } from "./cni-runtime.js";
import { addNamespace, deleteNamespace } from "./netns.js";

export interface PodNode {
  /** The node's network namespace; the plugins run in it. */
  netns: string;
  /** The node's subnet.env (written by its agent). */
  subnetFile: string;
  /** The IPAM store of the node's trellis plugin. */
  dataDir: string;
  /** The runtime's result cache for this node. */
  cacheDir: string;
  /** Plugin directories: this checkout's cni-plugin/bin and /usr/lib/cni (portmap). */
  binDirs: readonly string[];
  conflist: ConfList;
}

export interface Pod {
  /** Network namespace name (also used as container ID). */
  name: string;
  containerId: string;
  netnsPath: string;
  ifname: string;
  /** The pod's IPv4 address without prefix, from the ADD result. */
  ip: string;
  result: Record<string, unknown>;
}

export interface PodOptions {
  ifname?: string;
  portMappings?: readonly { hostPort: number; containerPort: number; protocol: "tcp" | "udp" }[];
}

/** The conflist (e.g. deploy/cni/10-trellis.conflist) with the trellis plugin pointed at this node's files. */
export function nodeConflist(base: ConfList, node: { subnetFile: string; dataDir: string }): ConfList {
  return {
    ...base,
    plugins: base.plugins.map((p) =>
      p.type === "trellis" ? { ...p, subnetFile: node.subnetFile, dataDir: node.dataDir } : { ...p },
    ),
  };
}

export async function readConflist(path: string): Promise<ConfList> {
  return JSON.parse(await readFile(path, "utf8")) as ConfList;
}

function runtimeFor(node: PodNode): CniRuntime {
  return new CniRuntime({ binDirs: node.binDirs, cacheDir: node.cacheDir, nodeNetns: node.netns });
}

/** Creates the namespace and ADDs it; on failure the namespace is removed again (the runtime already ran DEL). */
export async function createPod(node: PodNode, name: string, options: PodOptions = {}): Promise<Pod> {
  await addNamespace(name);
  const rt = { containerId: name, netns: `/run/netns/${name}`, ifname: options.ifname ?? "eth0" };
  try {
    const capabilityArgs = options.portMappings === undefined ? undefined : { portMappings: options.portMappings };
    const result = await runtimeFor(node).add(
      node.conflist,
      capabilityArgs === undefined ? rt : { ...rt, capabilityArgs },
    );
    return { name, containerId: name, netnsPath: rt.netns, ifname: rt.ifname, ip: podIp(result), result };
  } catch (error) {
    await deleteNamespace(name);
    throw error;
  }
}

/** DEL through the chain (with the cached result), then removes the namespace. */
export async function deletePod(
  node: PodNode,
  pod: Pick<Pod, "name" | "containerId" | "ifname" | "netnsPath">,
): Promise<void> {
  try {
    await runtimeFor(node).del(node.conflist, {
      containerId: pod.containerId,
      ifname: pod.ifname,
      netns: pod.netnsPath,
    });
  } finally {
    await deleteNamespace(pod.name);
  }
}

/** The pods the node's runtime cache knows, with their addresses. */
export async function listPods(node: PodNode): Promise<Pod[]> {
  const runtime = runtimeFor(node);
  const pods: Pod[] = [];
  for (const a of await runtime.cachedAttachments(node.conflist)) {
    const result = (await runtime.cachedResult(node.conflist, a)) ?? {};
    pods.push({
      name: a.containerId,
      containerId: a.containerId,
      netnsPath: `/run/netns/${a.containerId}`,
      ifname: a.ifname,
      ip: podIp(result),
      result,
    });
  }
  return pods;
}

function podIp(result: Record<string, unknown>): string {
  const ips = result.ips as { address?: string }[] | undefined;
  return ips?.[0]?.address?.split("/")[0] ?? "";
}
