// Pods in the lab: namespaces wired by each node's CNI chain (our plugin, then portmap) through the libcni-like
// runtime, as kubelet's runtime would; two of them run an HTTP server that a pod on another node fetches from.
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { REPO_ROOT } from "./paths.js";
import { commandLine, startDetached, stopPid } from "./exec.js";
import { httpGetIn } from "./http-get.js";
import type { LabLayout } from "./layout.js";
import type { Endpoint } from "./ping.js";
import { createPod, deletePod, nodeConflist, readConflist, type PodNode } from "./pods.js";
import type { LabState, PodState } from "./state.js";

export const POD_HTTP_PORT = 80;

/** What pods need of a lab (lab.ts's Lab is one): its layout, its state and a way to save that state. */
export interface PodLab {
  readonly layout: LabLayout;
  readonly current: LabState;
  save(): Promise<void>;
}
const SERVER_CMD = /pod-server\.js/;

/** The node's CNI view: its conflist (rendered for the node, pointed at its subnet file and IPAM dir), plugin dirs. */
export async function podNode(lab: PodLab, index: number): Promise<PodNode> {
  const node = lab.layout.node(index);
  const base = await readConflist(join(node.dir, "10-trellis.conflist")).catch(() =>
    readConflist(join(REPO_ROOT, "deploy/cni/10-trellis.conflist")),
  );
  const subnetFile = join(node.dir, "subnet.env");
  const dataDir = join(node.dir, "cni-ipam");
  return {
    netns: node.ns,
    subnetFile,
    dataDir,
    cacheDir: join(node.dir, "cni-cache"),
    // The plugin as scripts/install put it in /opt/cni/bin (under the lab's root), then the reference plugins (portmap).
    binDirs: [lab.layout.cniBinDir, "/usr/lib/cni"],
    conflist: nodeConflist(base, { subnetFile, dataDir }),
  };
}

export function podName(lab: PodLab, node: number, n: number): string {
  return `${lab.layout.prefix}-n${node}-p${n}`;
}

/** The labels a lab pod gets: the first pod of the first two nodes back the lab's demo Service (app=web). */
export function labPodLabels(lab: PodLab, node: number, n: number): Record<string, string> {
  const firstTwo = lab.current.nodes
    .map((x) => x.index)
    .sort((a, b) => a - b)
    .slice(0, 2);
  return { app: n === 1 && firstTwo.includes(node) ? "web" : "lab", node: `n${node}` };
}

/**
 * ADDs `count` more pods on a node through its CNI chain, each with a Kubernetes identity as a runtime passes it
 * (namespace "default", its name, labels): the node's agent publishes them as Service endpoints.
 */
export async function addPods(
  lab: PodLab,
  index: number,
  count: number,
  labels: (n: number) => Record<string, string> = (n) => labPodLabels(lab, index, n),
): Promise<PodState[]> {
  const cni = await podNode(lab, index);
  const added: PodState[] = [];
  for (let i = 0; i < count; i++) {
    const taken = new Set(lab.current.pods.filter((p) => p.node === index).map((p) => p.name));
    let n = 1;
    while (taken.has(podName(lab, index, n))) n += 1;
    const name = podName(lab, index, n);
    const kube = { namespace: "default", name, labels: labels(n) };
    const pod = await createPod(cni, name, { kube });
    const entry: PodState = {
      name: pod.name,
      node: index,
      ip: pod.ip,
      ...(pod.ip6 === undefined ? {} : { ip6: pod.ip6 }),
      kube,
      createdAt: new Date().toISOString(),
    };
    lab.current.pods.push(entry);
    await lab.save();
    added.push(entry);
  }
  return added;
}

/** DELs a pod through the chain and removes its namespace. */
export async function removePod(lab: PodLab, name: string): Promise<void> {
  const pod = lab.current.pods.find((p) => p.name === name);
  if (pod === undefined) throw new Error(`no pod ${name}`);
  if (pod.httpPid !== undefined) await stopPid(pod.httpPid, SERVER_CMD, 2000);
  await deletePod(await podNode(lab, pod.node), {
    name: pod.name,
    containerId: pod.name,
    ifname: "eth0",
    netnsPath: `/run/netns/${pod.name}`,
  });
  lab.current.pods.splice(lab.current.pods.indexOf(pod), 1);
  await lab.save();
}

/** Starts the pod's HTTP server on its IP, port 80 (or `port`); it answers with the pod's Kubernetes name. */
export async function startPodServer(lab: PodLab, pod: PodState, port = POD_HTTP_PORT): Promise<void> {
  const script = fileURLToPath(new URL("./pod-server.js", import.meta.url));
  pod.httpPort = port;
  pod.httpPid = startDetached(
    "ip",
    ["netns", "exec", pod.name, process.execPath, script, pod.ip, String(port), pod.kube?.name ?? pod.name],
    join(lab.layout.stateDir, `${pod.name}-http.log`),
  );
  await lab.save();
  for (let i = 0; i < 100; i++) {
    if ((await httpGetIn(pod.name, `http://${pod.ip}:${port}/`, 1000)).status === 200) return;
    if (!SERVER_CMD.test(commandLine(pod.httpPid))) throw new Error(`the HTTP server in ${pod.name} exited`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the HTTP server in ${pod.name} does not answer`);
}

/** GET http://<server ip>/ from inside the client pod. */
export async function fetchFromPod(client: PodState, server: PodState): Promise<{ ok: boolean; body: string }> {
  const answer = await httpGetIn(client.name, `http://${server.ip}:${POD_HTTP_PORT}/`, 3000);
  return { ok: answer.status === 200, body: answer.body.trim() };
}

/** GET any URL (a cluster IP, a Service name) from inside the pod. */
export async function fetchUrlFromPod(client: PodState, url: string): Promise<{ ok: boolean; body: string }> {
  const answer = await httpGetIn(client.name, url, 3000);
  return { ok: answer.status === 200, body: answer.body.trim() };
}

export function podEndpoints(lab: PodLab, family: "primary" | 6 = "primary"): Endpoint[] {
  return lab.current.pods.flatMap((p) => {
    const name = `n${p.node}/p${p.name.split("-p").pop() ?? "?"}`;
    if (family === "primary") return [{ name, ns: p.name, ip: p.ip }];
    // The IPv6 addresses of a dual-stack lab's pods (an IPv6-only lab's pods have theirs as `ip`).
    return p.ip6 === undefined ? [] : [{ name: `${name}/6`, ns: p.name, ip: p.ip6 }];
  });
}
