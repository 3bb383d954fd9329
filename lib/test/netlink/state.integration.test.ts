// Addresses, routes, neighbours and FDB entries through the real adapter, checked against `ip -j` / `bridge -j`.
import assert from "node:assert/strict";
import { NamespaceSet } from "../../../lab/src/netns.js";
import { run } from "../../../lab/src/exec.js";
import { isTrellisError } from "#lib/errors.js";
import type { Kernel, LinkInfo, RouteSpec } from "#lib/netlink/kernel.js";
import { namespaceWithVxlan } from "./fixture.js";

const OURS = 0x91;

async function json<T>(ns: string, tool: "ip" | "bridge", ...args: string[]): Promise<T> {
  const { stdout } = await run(tool, ["-j", "-n", ns, ...args]);
  return JSON.parse(stdout) as T;
}

describe("netlink adapter: addresses, routes, neighbours, fdb", () => {
  const namespaces = new NamespaceSet();
  let ns = "";
  let kernel: Kernel;
  let vxlan: LinkInfo;

  before(async () => {
    ({ ns, kernel, vxlan } = await namespaceWithVxlan(namespaces));
  });

  after(async () => {
    kernel.close();
    await namespaces.dispose();
  });

  it("adds an address idempotently and deletes it idempotently", async () => {
    const address = { index: vxlan.index, address: "10.244.1.0", prefixLen: 32 };
    await kernel.addAddress(address);
    await kernel.addAddress(address);
    assert.deepEqual(await kernel.listAddresses(vxlan.index), [address]);
    const ip = await json<{ addr_info: { family: string; local: string; prefixlen: number }[] }[]>(
      ns,
      "ip",
      "addr",
      "show",
      "dev",
      "flannel.1",
    );
    assert.deepEqual(
      ip[0]?.addr_info.filter((a) => a.family === "inet").map((a) => `${a.local}/${a.prefixlen}`),
      ["10.244.1.0/32"],
    );
    assert.ok(
      (await kernel.listAddresses()).some((a) => a.address === "10.244.1.0"),
      "unfiltered listing",
    );
    await kernel.deleteAddress(address);
    await kernel.deleteAddress(address);
    assert.deepEqual(await kernel.listAddresses(vxlan.index), []);
    await kernel.addAddress(address); // kept for the onlink routes below
  });

  it("replaces an onlink route with our protocol number, lists it by protocol, deletes it twice", async () => {
    const route: RouteSpec = {
      dst: "10.244.2.0",
      prefixLen: 24,
      gateway: "10.244.2.0",
      oif: vxlan.index,
      onlink: true,
      protocol: OURS,
    };
    await kernel.replaceRoute(route);
    await kernel.replaceRoute(route);
    const ours = await kernel.listRoutes({ protocol: OURS });
    assert.deepEqual(ours, [
      {
        dst: "10.244.2.0",
        prefixLen: 24,
        gateway: "10.244.2.0",
        oif: vxlan.index,
        protocol: OURS,
        table: 254,
        scope: "universe",
        type: "unicast",
        onlink: true,
      },
    ]);
    // (`ip route show proto N` leaves out the protocol it filtered on.)
    const ip = await json<{ dst: string; gateway: string; dev: string; flags: string[] }[]>(
      ns,
      "ip",
      "route",
      "show",
      "proto",
      String(OURS),
    );
    assert.deepEqual(ip, [{ dst: "10.244.2.0/24", gateway: "10.244.2.0", dev: "flannel.1", flags: ["onlink"] }]);

    await kernel.replaceRoute({ ...route, gateway: "10.244.2.1" });
    const replaced = await kernel.listRoutes({ protocol: OURS });
    assert.deepEqual(
      replaced.map((r) => r.gateway),
      ["10.244.2.1"],
      "replaced in place, not added",
    );

    await kernel.deleteRoute({ dst: "10.244.2.0", prefixLen: 24, protocol: OURS });
    await kernel.deleteRoute({ dst: "10.244.2.0", prefixLen: 24, protocol: OURS });
    assert.deepEqual(await kernel.listRoutes({ protocol: OURS }), []);
  });

  it("handles default routes, device routes, metrics and tables above 255", async () => {
    await kernel.replaceRoute({
      dst: "0.0.0.0",
      prefixLen: 0,
      gateway: "10.244.9.1",
      oif: vxlan.index,
      onlink: true,
      table: 1000,
      protocol: OURS,
    });
    await kernel.replaceRoute({ dst: "10.250.0.0", prefixLen: 16, oif: vxlan.index, metric: 50, protocol: OURS });
    const inTable = await kernel.listRoutes({ table: 1000 });
    assert.deepEqual(
      inTable.map((r) => [r.dst, r.prefixLen, r.gateway, r.table]),
      [["0.0.0.0", 0, "10.244.9.1", 1000]],
    );
    const ip = await json<{ dst: string; gateway: string }[]>(ns, "ip", "route", "show", "table", "1000");
    assert.deepEqual(
      ip.map((r) => [r.dst, r.gateway]),
      [["default", "10.244.9.1"]],
    );
    const [device] = await kernel.listRoutes({ oif: vxlan.index, protocol: OURS });
    assert.deepEqual(device, {
      dst: "10.250.0.0",
      prefixLen: 16,
      oif: vxlan.index,
      protocol: OURS,
      table: 254,
      scope: "link",
      type: "unicast",
      onlink: false,
      metric: 50,
    });
    assert.ok(
      (await kernel.listRoutes({ table: "all" })).some((r) => r.type === "local"),
      "all tables include the local table",
    );
    await kernel.deleteRoute({ dst: "0.0.0.0", prefixLen: 0, table: 1000 });
    await kernel.deleteRoute({ dst: "10.250.0.0", prefixLen: 16, oif: vxlan.index });
    assert.deepEqual(await kernel.listRoutes({ table: 1000 }), []);
    assert.deepEqual(await kernel.listRoutes({ protocol: OURS }), []);
  });

  it("leaves a route alone when the delete names another protocol (it is not ours)", async () => {
    await kernel.replaceRoute({ dst: "10.251.0.0", prefixLen: 16, oif: vxlan.index, protocol: 4 });
    await kernel.deleteRoute({ dst: "10.251.0.0", prefixLen: 16, protocol: OURS });
    assert.equal((await kernel.listRoutes({ protocol: 4 })).length, 1);
    await kernel.deleteRoute({ dst: "10.251.0.0", prefixLen: 16 });
    assert.equal((await kernel.listRoutes({ protocol: 4 })).length, 0);
  });

  it("replaces permanent neighbours idempotently and deletes them twice", async () => {
    const neighbor = { index: vxlan.index, ip: "10.244.2.0", mac: "0a:58:0a:f4:02:00", permanent: true };
    await kernel.replaceNeighbor(neighbor);
    await kernel.replaceNeighbor(neighbor);
    assert.deepEqual(await kernel.listNeighbors(vxlan.index), [
      { index: vxlan.index, ip: "10.244.2.0", mac: "0a:58:0a:f4:02:00", state: "permanent", permanent: true },
    ]);
    const ip = await json<{ dst: string; lladdr: string; state: string[] }[]>(
      ns,
      "ip",
      "neigh",
      "show",
      "dev",
      "flannel.1",
    );
    assert.deepEqual(ip, [{ dst: "10.244.2.0", lladdr: "0a:58:0a:f4:02:00", state: ["PERMANENT"] }]);

    await kernel.replaceNeighbor({ ...neighbor, mac: "0a:58:0a:f4:02:01" });
    assert.deepEqual(
      (await kernel.listNeighbors(vxlan.index)).map((n) => n.mac),
      ["0a:58:0a:f4:02:01"],
    );
    await kernel.replaceNeighbor({ ...neighbor, ip: "10.244.3.0", permanent: false });
    const dynamic = (await kernel.listNeighbors(vxlan.index)).find((n) => n.ip === "10.244.3.0");
    assert.equal(dynamic?.permanent, false);

    for (const ip of ["10.244.2.0", "10.244.3.0", "10.244.2.0"])
      await kernel.deleteNeighbor({ index: vxlan.index, ip });
    assert.deepEqual(await kernel.listNeighbors(vxlan.index), []);
  });

  it("replaces vxlan FDB entries like `bridge fdb replace … self permanent`", async () => {
    const entry = { index: vxlan.index, mac: "0a:58:0a:f4:02:00", dst: "10.99.0.2" };
    await kernel.replaceFdb(entry);
    await kernel.replaceFdb(entry);
    assert.deepEqual(await kernel.listFdb(vxlan.index), [{ ...entry, permanent: true, self: true }]);
    const bridge = await json<{ mac: string; dst: string; flags: string[]; state: string }[]>(
      ns,
      "bridge",
      "fdb",
      "show",
      "dev",
      "flannel.1",
    );
    assert.deepEqual(bridge, [{ mac: "0a:58:0a:f4:02:00", dst: "10.99.0.2", flags: ["self"], state: "permanent" }]);

    await kernel.replaceFdb({ ...entry, dst: "10.99.0.3" });
    assert.deepEqual(
      (await kernel.listFdb(vxlan.index)).map((f) => f.dst),
      ["10.99.0.3"],
      "replaced, not appended",
    );

    await kernel.deleteFdb({ index: vxlan.index, mac: entry.mac });
    await kernel.deleteFdb({ index: vxlan.index, mac: entry.mac });
    assert.deepEqual(await kernel.listFdb(vxlan.index), []);
  });

  it("serialises concurrent calls on one socket (dumps and changes interleaved)", async () => {
    // Unserialised, parallel dumps on one socket fail (EBUSY, broken multipart replies).
    const calls = Array.from({ length: 30 }, (_, i) => {
      if (i % 3 === 0)
        return kernel.replaceRoute({ dst: `10.252.${i}.0`, prefixLen: 24, oif: vxlan.index, protocol: OURS });
      return (i % 3 === 1 ? kernel.listRoutes() : kernel.listLinks()).then(() => undefined);
    });
    await Promise.all(calls);
    assert.equal((await kernel.listRoutes({ protocol: OURS })).length, 10);
    await Promise.all(
      Array.from({ length: 10 }, (_, i) => kernel.deleteRoute({ dst: `10.252.${3 * i}.0`, prefixLen: 24 })),
    );
    assert.equal((await kernel.listRoutes({ protocol: OURS })).length, 0);
  });

  it("rejects a gateway route to an unreachable gateway without onlink (ENETUNREACH), naming the route", async () => {
    await assert.rejects(
      kernel.replaceRoute({ dst: "10.253.0.0", prefixLen: 16, gateway: "10.253.9.9", oif: vxlan.index }),
      (e) => {
        assert.ok(isTrellisError(e, "NETLINK"));
        assert.match(
          e.message,
          /^replace route 10\.253\.0\.0\/16 via 10\.253\.9\.9 dev #\d+ failed: .*\(ENETUNREACH\)$/,
        );
        return true;
      },
    );
  });
});
