// The baseline topology for pod-to-pod figures: flannel's VXLAN design built by hand with iproute2 — two "nodes"
// behind a bridge namespace (like the lab's underlay), each with a vxlan device (MTU 1450, nolearning, static ARP and
// FDB entry for the other), a bridge cni0 with the gateway address, and a "pod" behind a veth — the same hops as a
// trellis pod-to-pod path, with no agent and no plugin.
import { run } from "../../lab/src/exec.js";
import { ipIn, type NamespaceSet } from "../../lab/src/netns.js";

export interface PodEnd {
  readonly ns: string;
  readonly ip: string;
}

export async function handBuiltPods(namespaces: NamespaceSet): Promise<[PodEnd, PodEnd]> {
  const hub = await namespaces.add();
  await ipIn(hub, "link", "add", "br0", "type", "bridge");
  await ipIn(hub, "link", "set", "br0", "up");
  const pods: PodEnd[] = [];
  const mac = (i: number): string => `02:00:00:00:64:0${i}`;
  for (const i of [1, 2]) {
    const node = await namespaces.add();
    const pod = await namespaces.add();
    const peer = 3 - i;
    await namespaces.link({ ns: hub, ifname: `h${i}` }, { ns: node, ifname: "eth0", cidr: `10.43.0.${i}/24` });
    await ipIn(hub, "link", "set", `h${i}`, "master", "br0");
    await run("ip", ["netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    await ipIn(
      node,
      "link",
      "add",
      "vx0",
      "type",
      "vxlan",
      "id",
      "100",
      "local",
      `10.43.0.${i}`,
      "dev",
      "eth0",
      "dstport",
      "8472",
      "nolearning",
    );
    await ipIn(node, "link", "set", "vx0", "mtu", "1450", "address", mac(i), "up");
    await ipIn(node, "addr", "add", `10.201.${i}.0/32`, "dev", "vx0");
    await ipIn(node, "neigh", "add", `10.201.${peer}.0`, "lladdr", mac(peer), "dev", "vx0", "nud", "permanent");
    await run("bridge", [
      "-n",
      node,
      "fdb",
      "append",
      mac(peer),
      "dev",
      "vx0",
      "dst",
      `10.43.0.${peer}`,
      "self",
      "permanent",
    ]);
    await ipIn(node, "route", "add", `10.201.${peer}.0/24`, "via", `10.201.${peer}.0`, "dev", "vx0", "onlink");
    await ipIn(node, "link", "add", "cni0", "type", "bridge");
    await ipIn(node, "addr", "add", `10.201.${i}.1/24`, "dev", "cni0");
    await ipIn(node, "link", "set", "cni0", "mtu", "1450", "up");
    await namespaces.link({ ns: node, ifname: "veth0" }, { ns: pod, ifname: "eth0", cidr: `10.201.${i}.2/24` });
    await ipIn(node, "link", "set", "veth0", "master", "cni0", "mtu", "1450");
    await ipIn(pod, "link", "set", "eth0", "mtu", "1450");
    await ipIn(pod, "route", "add", "default", "via", `10.201.${i}.1`);
    pods.push({ ns: pod, ip: `10.201.${i}.2` });
  }
  const [a, b] = pods;
  if (a === undefined || b === undefined) throw new Error("hand-built pods missing");
  return [a, b];
}

/**
 * The same topology for the IPv6 pod network, over an IPv6 underlay as a dual-stack trellis node runs it: the
 * vxlan device MTU 1430 (1500 less 70: outer IPv6 40 + UDP 8 + VXLAN 8 + Ethernet 14), NDP and FDB entries by hand.
 * Addresses without duplicate address detection, so they are usable at once.
 */
export async function handBuiltPods6(namespaces: NamespaceSet): Promise<[PodEnd, PodEnd]> {
  const hub = await namespaces.add();
  await ipIn(hub, "link", "add", "br0", "type", "bridge");
  await ipIn(hub, "link", "set", "br0", "up");
  const pods: PodEnd[] = [];
  const mac = (i: number): string => `02:00:00:00:66:0${i}`;
  const subnet = (i: number): string => `fd31:0:0:${i}::`;
  for (const i of [1, 2]) {
    const node = await namespaces.add();
    const pod = await namespaces.add();
    const peer = 3 - i;
    await namespaces.link({ ns: hub, ifname: `h${i}` }, { ns: node, ifname: "eth0" });
    await ipIn(hub, "link", "set", `h${i}`, "master", "br0");
    await ipIn(node, "addr", "add", `fd43::${i}/64`, "dev", "eth0", "nodad");
    await run("ip", ["netns", "exec", node, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
    await ipIn(node, "link", "add", "vx6", "type", "vxlan", "id", "100", "local", `fd43::${i}`, "dev", "eth0");
    await ipIn(node, "link", "set", "vx6", "type", "vxlan", "nolearning");
    await ipIn(node, "link", "set", "vx6", "mtu", "1430", "address", mac(i), "up");
    await ipIn(node, "addr", "add", `${subnet(i)}/128`, "dev", "vx6", "nodad");
    await ipIn(node, "-6", "neigh", "add", subnet(peer), "lladdr", mac(peer), "dev", "vx6", "nud", "permanent");
    await run("bridge", [
      "-n",
      node,
      "fdb",
      "append",
      mac(peer),
      "dev",
      "vx6",
      "dst",
      `fd43::${peer}`,
      "self",
      "permanent",
    ]);
    await ipIn(node, "-6", "route", "add", `${subnet(peer)}/64`, "via", subnet(peer), "dev", "vx6", "onlink");
    await ipIn(node, "link", "add", "cni0", "type", "bridge");
    await ipIn(node, "addr", "add", `${subnet(i)}1/64`, "dev", "cni0", "nodad");
    await ipIn(node, "link", "set", "cni0", "mtu", "1430", "up");
    await namespaces.link({ ns: node, ifname: "veth0" }, { ns: pod, ifname: "eth0" });
    await ipIn(pod, "addr", "add", `${subnet(i)}2/64`, "dev", "eth0", "nodad");
    await ipIn(node, "link", "set", "veth0", "master", "cni0", "mtu", "1430");
    await ipIn(pod, "link", "set", "eth0", "mtu", "1430");
    await ipIn(pod, "-6", "route", "add", "default", "via", `${subnet(i)}1`);
    pods.push({ ns: pod, ip: `${subnet(i)}2` });
  }
  const [a, b] = pods;
  if (a === undefined || b === undefined) throw new Error("hand-built IPv6 pods missing");
  return [a, b];
}
