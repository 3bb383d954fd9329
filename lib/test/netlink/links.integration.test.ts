// Links through the real adapter, inside throwaway namespaces; `ip -d -j` is the independent witness.
import assert from "node:assert/strict";
import { ipIn, NamespaceSet } from "../../../lab/src/netns.js";
import { isTrellisError } from "#lib/errors.js";
import { isNetlinkErrno, NetlinkError } from "#lib/netlink/errors.js";
import type { Kernel } from "#lib/netlink/kernel.js";
import { openKernel } from "#lib/netlink/rtnetlink-kernel.js";

interface IpLink {
  ifindex: number;
  ifname: string;
  mtu: number;
  address: string;
  flags: string[];
  master?: string;
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown>; info_slave_data?: Record<string, unknown> };
}

async function ipLink(ns: string, name: string): Promise<IpLink> {
  const { stdout } = await ipIn(ns, "-d", "-j", "link", "show", "dev", name);
  const [link] = JSON.parse(stdout) as IpLink[];
  assert.ok(link, `ip shows ${name}`);
  return link;
}

describe("netlink adapter: links", () => {
  const namespaces = new NamespaceSet();
  const kernels: Kernel[] = [];
  let ns = "";
  let otherNs = "";
  let kernel: Kernel;

  before(async () => {
    ns = await namespaces.add();
    otherNs = await namespaces.add();
    kernel = openKernel({ netns: ns });
    kernels.push(kernel);
    // The underlay: a veth pair created inside the namespace (never in the root namespace).
    await ipIn(ns, "link", "add", "ul0", "type", "veth", "peer", "name", "ul1");
  });

  after(async () => {
    for (const k of kernels) k.close();
    await namespaces.dispose();
  });

  it("creates a vxlan device like `ip link add … type vxlan … nolearning` and reads every attribute back", async () => {
    const underlay = await kernel.getLink("ul0");
    assert.ok(underlay);
    const created = await kernel.createVxlan({
      name: "flannel.1",
      vni: 1,
      port: 8472,
      local: "10.99.0.1",
      underlayIndex: underlay.index,
      mtu: 1450,
      mac: "0a:58:0a:f4:01:00",
    });
    assert.deepEqual(created, {
      index: created.index,
      name: "flannel.1",
      kind: "vxlan",
      mtu: 1450,
      mac: "0a:58:0a:f4:01:00",
      up: false,
      vxlan: { vni: 1, port: 8472, local: "10.99.0.1", underlayIndex: underlay.index, learning: false },
    });
    const ip = await ipLink(ns, "flannel.1");
    assert.equal(ip.ifindex, created.index);
    assert.equal(ip.address, "0a:58:0a:f4:01:00");
    assert.equal(ip.mtu, 1450);
    assert.equal(ip.linkinfo?.info_kind, "vxlan");
    const data = ip.linkinfo.info_data;
    assert.deepEqual(
      [data?.id, data?.local, data?.link, data?.port, data?.learning],
      [1, "10.99.0.1", "ul0", 8472, false],
    );
    assert.deepEqual(await kernel.getLink(created.index), created, "by index as by name");
  });

  it("changes a vxlan link's learning, local address and underlay in place (same ifindex), with MTU in one call", async () => {
    const underlay = await kernel.getLink("ul0");
    assert.ok(underlay);
    await ipIn(ns, "link", "add", "ul2", "type", "veth", "peer", "name", "ul3");
    const other = await kernel.getLink("ul2");
    assert.ok(other);
    const link = await kernel.createVxlan({
      name: "vx.change",
      vni: 3,
      port: 8472,
      local: "10.99.0.1",
      underlayIndex: underlay.index,
    });
    await kernel.setLink(link.index, { vxlan: { learning: true } });
    let data = (await ipLink(ns, "vx.change")).linkinfo?.info_data;
    assert.deepEqual([data?.learning, data?.local, data?.link], [true, "10.99.0.1", "ul0"], "only learning changed");
    await kernel.setLink(link.index, {
      vxlan: { learning: false, local: "10.99.0.2", underlayIndex: other.index },
      mtu: 1400,
    });
    const ip = await ipLink(ns, "vx.change");
    data = ip.linkinfo?.info_data;
    assert.deepEqual(
      [ip.ifindex, ip.mtu, data?.learning, data?.local, data?.link, data?.id, data?.port],
      [link.index, 1400, false, "10.99.0.2", "ul2", 3, 8472],
    );
    assert.deepEqual((await kernel.getLink(link.index))?.vxlan, {
      vni: 3,
      port: 8472,
      local: "10.99.0.2",
      underlayIndex: other.index,
      learning: false,
    });
    // Not a vxlan link: the driver has no such attributes to change.
    await assert.rejects(kernel.setLink(other.index, { vxlan: { learning: false } }), (e) => isNetlinkErrno(e));
    await kernel.deleteLink(link.index);
  });

  it("refuses to create a link that exists (EEXIST), and deletes idempotently", async () => {
    const underlay = await kernel.getLink("ul0");
    assert.ok(underlay);
    const spec = { name: "vx.dup", vni: 2, port: 8472, local: "10.99.0.1", underlayIndex: underlay.index };
    const link = await kernel.createVxlan(spec);
    await assert.rejects(
      kernel.createVxlan(spec),
      (e) => isNetlinkErrno(e, "EEXIST") && e.code === "NETLINK" && /vx\.dup/.test(e.message),
    );
    await kernel.deleteLink(link.index);
    await kernel.deleteLink(link.index);
    assert.equal(await kernel.getLink("vx.dup"), undefined);
    assert.equal(await kernel.getLink(link.index), undefined);
  });

  it("creates a bridge and a veth whose peer is born in another namespace, then enslaves, sets MTU, up, hairpin", async () => {
    const bridge = await kernel.createBridge({ name: "cni0", mtu: 1400, mac: "0a:58:0a:f4:01:01" });
    assert.equal(bridge.kind, "bridge");
    assert.equal(bridge.mac, "0a:58:0a:f4:01:01");
    const veth = await kernel.createVeth({
      name: "veth0a",
      peerName: "eth0",
      mtu: 1400,
      peerNetns: `/run/netns/${otherNs}`,
      peerMac: "0a:58:0a:f4:01:05",
    });
    assert.equal(veth.kind, "veth");
    assert.equal(veth.mtu, 1400);
    assert.equal(await kernel.getLink("eth0"), undefined, "the peer is not in our namespace");
    const peer = await ipLink(otherNs, "eth0");
    assert.equal(peer.mtu, 1400);
    assert.equal(peer.address, "0a:58:0a:f4:01:05");

    await kernel.setLink(veth.index, { masterIndex: bridge.index, up: true });
    await kernel.setHairpin(veth.index, true);
    let link = await kernel.getLink(veth.index);
    assert.deepEqual([link?.masterIndex, link?.up, link?.hairpin], [bridge.index, true, true]);
    let ip = await ipLink(ns, "veth0a");
    assert.equal(ip.master, "cni0");
    assert.ok(ip.flags.includes("UP"));
    assert.equal(ip.linkinfo?.info_slave_data?.hairpin, true);

    await kernel.setHairpin(veth.index, false);
    assert.equal((await ipLink(ns, "veth0a")).linkinfo?.info_slave_data?.hairpin, false);
    assert.equal((await kernel.getLink(veth.index))?.hairpin, false);

    await kernel.setLink(veth.index, { masterIndex: 0, up: false, mtu: 1350, mac: "0a:58:0a:f4:01:09" });
    link = await kernel.getLink(veth.index);
    assert.deepEqual(
      [link?.masterIndex, link?.hairpin, link?.up, link?.mtu, link?.mac],
      [undefined, undefined, false, 1350, "0a:58:0a:f4:01:09"],
    );
    ip = await ipLink(ns, "veth0a");
    assert.equal(ip.master, undefined);
    assert.ok(!ip.flags.includes("UP"));
  });

  it("reports a missing link as undefined on get, ENODEV on change, success on delete", async () => {
    assert.equal(await kernel.getLink("nothing0"), undefined);
    await assert.rejects(kernel.setLink(999_999, { up: true }), (e) => {
      assert.ok(e instanceof NetlinkError);
      assert.equal(e.errno, "ENODEV");
      assert.equal(e.operation, "set link");
      return true;
    });
    await assert.rejects(kernel.setHairpin(999_999, true), (e) => isNetlinkErrno(e, "ENODEV"));
    await kernel.deleteLink(999_999);
  });

  it("rejects bad names and namespaces with typed errors", async () => {
    await assert.rejects(kernel.createBridge({ name: "a-name-longer-than-15" }), (e) =>
      isTrellisError(e, "INVALID_ARGUMENT"),
    );
    await assert.rejects(
      kernel.createVeth({ name: "vethx", peerName: "eth9", peerNetns: "/run/netns/no-such-ns-here" }),
      (e) => isTrellisError(e, "NOT_FOUND"),
    );
    assert.equal(await kernel.getLink("vethx"), undefined, "nothing half-created");
    assert.throws(
      () => openKernel({ netns: "no-such-ns-here" }),
      (e) => isTrellisError(e, "NOT_FOUND") && /\/run\/netns\/no-such-ns-here/.test(e.message),
    );
  });

  it("keeps two kernels in two namespaces apart", async () => {
    const other = openKernel({ netns: otherNs });
    kernels.push(other);
    const mine = await kernel.createBridge({ name: "only-here" });
    const theirs = await other.createBridge({ name: "only-there" });
    const names = async (k: Kernel): Promise<string[]> => (await k.listLinks()).map((l) => l.name);
    assert.ok((await names(kernel)).includes("only-here"));
    assert.ok(!(await names(kernel)).includes("only-there"));
    assert.ok((await names(other)).includes("only-there"));
    assert.ok(!(await names(other)).includes("only-here"));
    await kernel.deleteLink(mine.index);
    await other.deleteLink(theirs.index);
  });

  it("fails every call after close() with EBADF", async () => {
    const k = openKernel({ netns: ns });
    k.close();
    k.close();
    await assert.rejects(k.listLinks(), (e) => isNetlinkErrno(e, "EBADF"));
    assert.throws(
      () => k.watch(() => undefined),
      (e) => isNetlinkErrno(e, "EBADF"),
    );
  });
});
