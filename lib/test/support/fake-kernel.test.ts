// The fake Kernel models IPv6 as the real adapter has it (ipv6.integration.test.ts): the family follows the address
// string, IPv6 text in RFC 5952 form, lists IPv4 unless asked for 6; IPv4 entries stay exactly as before.
import assert from "node:assert/strict";
import { isTrellisError } from "#lib/errors.js";
import type { KernelEvent } from "#lib/netlink/kernel.js";
import { FakeWorld } from "./fake-kernel.js";

function setup(): { kernel: ReturnType<FakeWorld["kernel"]>; index: number } {
  const world = new FakeWorld();
  const link = world.addLink("host", { name: "eth0", mtu: 1500, up: true });
  return { kernel: world.kernel("host"), index: link.index };
}

describe("fake kernel: IPv6 beside IPv4", () => {
  it("lists addresses, routes and neighbours by family, IPv4 by default, IPv6 in canonical form", async () => {
    const { kernel, index } = setup();
    await kernel.addAddress({ index, address: "10.0.0.1", prefixLen: 24 });
    await kernel.addAddress({ index, address: "FD00:0:0:0:0:0:0:1", prefixLen: 64 });
    assert.deepEqual(await kernel.listAddresses(index), [{ index, address: "10.0.0.1", prefixLen: 24 }]);
    assert.deepEqual(await kernel.listAddresses(index, 6), [{ index, address: "fd00::1", prefixLen: 64 }]);
    await kernel.deleteAddress({ index, address: "fd00:0::1", prefixLen: 64 });
    assert.deepEqual(await kernel.listAddresses(undefined, 6), []);

    await kernel.replaceRoute({ dst: "10.244.2.0", prefixLen: 24, oif: index, protocol: 145 });
    await kernel.replaceRoute({
      dst: "fd30:0:0:5:0:0:0:0",
      prefixLen: 64,
      gateway: "FD00::2",
      oif: index,
      protocol: 145,
      scope: "link",
    });
    assert.deepEqual(
      (await kernel.listRoutes({ protocol: 145 })).map((r) => [r.dst, r.scope, r.metric]),
      [["10.244.2.0", "link", undefined]],
    );
    assert.deepEqual(await kernel.listRoutes({ family: 6 }), [
      {
        dst: "fd30:0:0:5::",
        prefixLen: 64,
        gateway: "fd00::2",
        oif: index,
        protocol: 145,
        table: 254,
        scope: "universe",
        type: "unicast",
        onlink: false,
        metric: 1024,
      },
    ]);
    await kernel.deleteRoute({ dst: "fd30:0:0:5::", prefixLen: 64 });
    assert.deepEqual(await kernel.listRoutes({ family: 6 }), []);

    await kernel.replaceNeighbor({ index, ip: "fe80:0::2", mac: "0a:58:0a:f4:02:00", permanent: true });
    await kernel.replaceNeighbor({ index, ip: "10.244.2.0", mac: "0a:58:0a:f4:02:00", permanent: true });
    assert.deepEqual(
      (await kernel.listNeighbors(index)).map((n) => n.ip),
      ["10.244.2.0"],
    );
    assert.deepEqual(
      (await kernel.listNeighbors(index, 6)).map((n) => n.ip),
      ["fe80::2"],
    );
    await kernel.deleteNeighbor({ index, ip: "fe80::2" });
    assert.deepEqual(await kernel.listNeighbors(index, 6), []);
  });

  it("keeps vxlan IPv6 locals and FDB destinations of either family, and refuses what the adapter refuses", async () => {
    const { kernel, index } = setup();
    const vxlan = await kernel.createVxlan({ name: "vx6", vni: 6, port: 4789, local: "FD00::1", underlayIndex: index });
    assert.equal(vxlan.vxlan?.local, "fd00::1");
    await kernel.setLink(vxlan.index, { vxlan: { local: "fd00:0::5" } });
    assert.equal(kernel.byName("vx6")?.vxlan?.local, "fd00::5");

    await kernel.replaceFdb({ index: vxlan.index, mac: "0a:58:0a:f4:02:00", dst: "FD00::2" });
    await kernel.replaceFdb({ index: vxlan.index, mac: "0a:58:0a:f4:03:00", dst: "10.99.0.3" });
    assert.deepEqual(
      (await kernel.listFdb(vxlan.index)).map((f) => f.dst),
      ["fd00::2", "10.99.0.3"],
    );
    await kernel.deleteFdb({ index: vxlan.index, mac: "0a:58:0a:f4:02:00", dst: "fd00:0::2" });
    assert.equal((await kernel.listFdb(vxlan.index)).length, 1);

    await assert.rejects(
      kernel.replaceRoute({ dst: "fd30::", prefixLen: 64, gateway: "10.0.0.1" }),
      (e) => isTrellisError(e, "INVALID_ARGUMENT") && /gateway "10.0.0.1".*dst "fd30::"/.test(e.message),
    );
    await assert.rejects(kernel.addAddress({ index, address: "fe80::1%eth0", prefixLen: 64 }), (e) =>
      isTrellisError(e, "INVALID_ARGUMENT"),
    );
  });

  it("reports IPv6 entries in events as they are listed", async () => {
    const { kernel, index } = setup();
    const events: KernelEvent[] = [];
    kernel.watch((event) => events.push(event));
    await kernel.addAddress({ index, address: "FD00::1", prefixLen: 64 });
    await kernel.replaceRoute({ dst: "fd30:0::", prefixLen: 64, oif: index });
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(
      events.flatMap((e) => (e.type === "address" ? [e.address.address] : e.type === "route" ? [e.route.dst] : [])),
      ["fd00::1", "fd30::"],
    );
  });
});
