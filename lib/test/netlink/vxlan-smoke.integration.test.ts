// End to end through the adapter only: two "nodes" (namespaces) joined by a veth underlay, a vxlan device in each
// programmed the way the VXLAN backend will (device, X.0/32, onlink route via the peer's X.0, permanent neighbour,
// FDB to the peer's underlay IP), then a ping between the nodes' pod-side addresses through the tunnel.
import assert from "node:assert/strict";
import { inNetns, NamespaceSet } from "../../../lab/src/netns.js";
import type { Kernel, LinkInfo } from "#lib/netlink/kernel.js";
import { openKernel } from "#lib/netlink/rtnetlink-kernel.js";

interface Node {
  ns: string;
  kernel: Kernel;
  underlayIp: string;
  /** The node's subnet is 10.244.<n>.0/24: the vxlan device holds .0/32, the bridge .1/24. */
  n: number;
  vxlan: LinkInfo;
}

const OURS = 0x91;

async function program(node: { ns: string; underlayIp: string; n: number }, kernel: Kernel): Promise<Node> {
  const underlay = await kernel.getLink("ul0");
  assert.ok(underlay);
  const vxlan = await kernel.createVxlan({
    name: "flannel.1",
    vni: 1,
    port: 8472,
    local: node.underlayIp,
    underlayIndex: underlay.index,
    mtu: 1450,
    mac: `0a:58:0a:f4:0${node.n}:00`,
  });
  await kernel.setLink(vxlan.index, { up: true });
  await kernel.addAddress({ index: vxlan.index, address: `10.244.${node.n}.0`, prefixLen: 32 });
  const bridge = await kernel.createBridge({ name: "cni0", mtu: 1450 });
  await kernel.addAddress({ index: bridge.index, address: `10.244.${node.n}.1`, prefixLen: 24 });
  await kernel.setLink(bridge.index, { up: true });
  return { ...node, kernel, vxlan };
}

async function addPeer(node: Node, peer: Node): Promise<void> {
  const gateway = `10.244.${peer.n}.0`;
  const peerMac = peer.vxlan.mac;
  assert.ok(peerMac !== undefined);
  await node.kernel.replaceRoute({
    dst: gateway,
    prefixLen: 24,
    gateway,
    oif: node.vxlan.index,
    onlink: true,
    protocol: OURS,
  });
  await node.kernel.replaceNeighbor({ index: node.vxlan.index, ip: gateway, mac: peerMac, permanent: true });
  await node.kernel.replaceFdb({ index: node.vxlan.index, mac: peerMac, dst: peer.underlayIp });
}

async function txPackets(node: Node): Promise<number> {
  const { stdout } = await inNetns(node.ns, "cat", ["/sys/class/net/flannel.1/statistics/tx_packets"]);
  return Number(stdout.trim());
}

describe("netlink adapter: two-node VXLAN smoke test", () => {
  const namespaces = new NamespaceSet();
  const kernels: Kernel[] = [];

  after(async () => {
    for (const kernel of kernels) kernel.close();
    await namespaces.dispose();
  });

  it("pings from node 1's pod network to node 2's through the tunnel", async () => {
    const ns1 = await namespaces.add();
    const ns2 = await namespaces.add();
    await namespaces.link(
      { ns: ns1, ifname: "ul0", cidr: "10.99.0.1/24" },
      { ns: ns2, ifname: "ul0", cidr: "10.99.0.2/24" },
    );
    const k1 = openKernel({ netns: ns1 });
    const k2 = openKernel({ netns: ns2 });
    kernels.push(k1, k2);
    const node1 = await program({ ns: ns1, underlayIp: "10.99.0.1", n: 1 }, k1);
    const node2 = await program({ ns: ns2, underlayIp: "10.99.0.2", n: 2 }, k2);
    await addPeer(node1, node2);
    await addPeer(node2, node1);

    const before = await txPackets(node1);
    const ping = await inNetns(ns1, "ping", ["-c", "1", "-W", "1", "-I", "10.244.1.1", "10.244.2.1"]);
    assert.match(ping.stdout, /1 received/);
    assert.ok((await txPackets(node1)) > before, "the echo request left through flannel.1");
  });
});
