// A test namespace with a kernel handle in it and a vxlan device flannel.1 (up) on a veth underlay ul0.
import assert from "node:assert/strict";
import { ipIn, type NamespaceSet } from "../../../lab/src/netns.js";
import type { Kernel, LinkInfo } from "#lib/netlink/kernel.js";
import { openKernel } from "#lib/netlink/rtnetlink-kernel.js";

export async function namespaceWithVxlan(
  namespaces: NamespaceSet,
): Promise<{ ns: string; kernel: Kernel; vxlan: LinkInfo }> {
  const ns = await namespaces.add();
  const kernel = openKernel({ netns: ns });
  await ipIn(ns, "link", "add", "ul0", "type", "veth", "peer", "name", "ul1");
  const underlay = await kernel.getLink("ul0");
  assert.ok(underlay);
  const vxlan = await kernel.createVxlan({
    name: "flannel.1",
    vni: 1,
    port: 8472,
    local: "10.99.0.1",
    underlayIndex: underlay.index,
  });
  await kernel.setLink(vxlan.index, { up: true });
  return { ns, kernel, vxlan };
}
