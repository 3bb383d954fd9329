// Pods for the lab and the end-to-end tests: a pod is a network namespace wired by the node's CNI chain through
// the libcni-like runtime, as kubelet's runtime would. Plain parameters only (no dependency on lab.ts).
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CniRuntime, type ConfList } from "./cni-runtime.js";
import { addNamespace, deleteNamespace, netnsEtcDir } from "./netns.js";

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
  /** The pod's address without prefix, from the ADD result: its IPv4 one, or its IPv6 one when it has no other. */
  ip: string;
  /** Its IPv6 address as well on a dual-stack network. */
  ip6: string | undefined;
  result: Record<string, unknown>;
}

export interface PodOptions {
  ifname?: string;
  portMappings?: readonly { hostPort: number; containerPort: number; protocol: "tcp" | "udp" }[];
  /** The Kubernetes identity a runtime passes (CNI_ARGS K8S_POD_NAMESPACE / K8S_POD_NAME): the pod becomes an endpoint. */
  kube?: { readonly namespace: string; readonly name: string; readonly labels: Readonly<Record<string, string>> };
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
  const kube = options.kube;
  const rt = {
    containerId: name,
    netns: `/run/netns/${name}`,
    ifname: options.ifname ?? "eth0",
    ...(kube === undefined
      ? {}
      : {
          args: [
            ["K8S_POD_NAMESPACE", kube.namespace],
            ["K8S_POD_NAME", kube.name],
          ] as const,
          labels: kube.labels,
        }),
  };
  try {
    const capabilityArgs = options.portMappings === undefined ? undefined : { portMappings: options.portMappings };
    const result = await runtimeFor(node).add(
      node.conflist,
      capabilityArgs === undefined ? rt : { ...rt, capabilityArgs },
    );
    await writeResolvConf(name, result);
    return { name, containerId: name, netnsPath: rt.netns, ifname: rt.ifname, ...podIps(result), result };
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
      ...podIps(result),
      result,
    });
  }
  return pods;
}

/** resolv.conf(5) from a CNI result's `dns`, as kubelet writes a pod's; undefined when it names no nameserver. */
export function resolvConfOf(result: Record<string, unknown>): string | undefined {
  const dns = result.dns as { nameservers?: string[]; search?: string[]; options?: string[] } | undefined;
  if (dns?.nameservers === undefined || dns.nameservers.length === 0) return undefined;
  return [
    ...dns.nameservers.map((ns) => `nameserver ${ns}`),
    ...(dns.search !== undefined && dns.search.length > 0 ? [`search ${dns.search.join(" ")}`] : []),
    ...(dns.options !== undefined && dns.options.length > 0 ? [`options ${dns.options.join(" ")}`] : []),
    "",
  ].join("\n");
}

/**
 * The pod's resolv.conf where `ip netns exec` finds it (/etc/netns/<pod>/resolv.conf, written atomically), as a
 * runtime writes the container's from the ADD result; deleteNamespace() removes it with the pod.
 */
async function writeResolvConf(name: string, result: Record<string, unknown>): Promise<void> {
  const text = resolvConfOf(result);
  if (text === undefined) return;
  const dir = netnsEtcDir(name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, ".resolv.conf.tmp"), text);
  await rename(join(dir, ".resolv.conf.tmp"), join(dir, "resolv.conf"));
}

function podIps(result: Record<string, unknown>): { ip: string; ip6: string | undefined } {
  const addresses = ((result.ips as { address?: string }[] | undefined) ?? []).map(
    (entry) => entry.address?.split("/")[0] ?? "",
  );
  const v4 = addresses.find((a) => a !== "" && !a.includes(":"));
  const v6 = addresses.find((a) => a.includes(":"));
  return v4 === undefined ? { ip: v6 ?? "", ip6: undefined } : { ip: v4, ip6: v6 };
}
