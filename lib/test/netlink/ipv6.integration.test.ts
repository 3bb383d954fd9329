// IPv6 through the real adapter, checked against `ip -j -6` / `bridge -j`: addresses, routes, NDP neighbours, a
// vxlan device on an IPv6 underlay with its FDB, IPv6 events and sysctls. One throwaway namespace with a veth pair
// ul0–ul1 (both ends inside it), fd00::1/64 on ul0.
import assert from "node:assert/strict";
import { run } from "../../../lab/src/exec.js";
import { inNetns, ipIn, NamespaceSet } from "../../../lab/src/netns.js";
import { isTrellisError } from "#lib/errors.js";
import type { Kernel, KernelEvent, LinkInfo, RouteInfo, RouteSpec } from "#lib/netlink/kernel.js";
import { openKernel } from "#lib/netlink/rtnetlink-kernel.js";

const OURS = 0x91;
const PEER_MAC = "0a:58:0a:f4:02:00";

async function json<T>(ns: string, tool: "ip" | "bridge", ...args: string[]): Promise<T> {
  const { stdout } = await run(tool, ["-j", "-n", ns, ...args]);
  return JSON.parse(stdout) as T;
}

/** The first event matching `match` among those already seen from `from` on, or within a second. */
function eventAfter(events: KernelEvent[], from: number, match: (e: KernelEvent) => boolean): Promise<KernelEvent> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = (): void => {
      const event = events.slice(from).find(match);
      if (event !== undefined) resolve(event);
      else if (Date.now() - started > 1000)
        reject(new Error(`no matching event within 1 s; got ${JSON.stringify(events.slice(from))}`));
      else setTimeout(poll, 5);
    };
    poll();
  });
}

describe("netlink adapter: IPv6", () => {
  const namespaces = new NamespaceSet();
  let ns = "";
  let kernel: Kernel;
  let ul0: LinkInfo;

  before(async () => {
    ns = await namespaces.add();
    kernel = openKernel({ netns: ns });
    // A fresh namespace may inherit IPv6 switched off; links made after this have it on.
    await kernel.setSysctl("net.ipv6.conf.all.disable_ipv6", "0");
    await kernel.setSysctl("net.ipv6.conf.default.disable_ipv6", "0");
    await ipIn(ns, "link", "add", "ul0", "type", "veth", "peer", "name", "ul1");
    const link = await kernel.getLink("ul0");
    const peer = await kernel.getLink("ul1");
    assert.ok(link && peer);
    ul0 = link;
    await kernel.setLink(ul0.index, { up: true });
    await kernel.setLink(peer.index, { up: true });
  });

  after(async () => {
    kernel.close();
    await namespaces.dispose();
  });

  it("adds an IPv6 address idempotently, usable at once, listed only when asked for 6, and deletes it twice", async () => {
    const address = { index: ul0.index, address: "FD00:0:0:0:0:0:0:1", prefixLen: 64 };
    await kernel.addAddress(address);
    await kernel.addAddress(address);
    const listed = await kernel.listAddresses(ul0.index, 6);
    assert.deepEqual(
      listed.filter((a) => !a.address.startsWith("fe80:")),
      [{ index: ul0.index, address: "fd00::1", prefixLen: 64 }],
    );
    assert.ok(
      listed.some((a) => a.address.startsWith("fe80::") && a.prefixLen === 64),
      "the link-local address is listed like any other",
    );
    assert.deepEqual(await kernel.listAddresses(ul0.index), [], "IPv4 only by default");
    assert.ok(
      (await kernel.listAddresses(undefined, 6)).some((a) => a.address === "::1"),
      "lo's, unfiltered",
    );
    const ip = await json<{ addr_info: { local: string; prefixlen: number; tentative?: boolean }[] }[]>(
      ns,
      "ip",
      "-6",
      "addr",
      "show",
      "dev",
      "ul0",
    );
    const shown = ip[0]?.addr_info.find((a) => a.local === "fd00::1");
    assert.equal(shown?.prefixlen, 64);
    assert.equal(shown.tentative, undefined, "added without DAD: never tentative");

    await kernel.deleteAddress(address);
    await kernel.deleteAddress({ ...address, address: "fd00::1" });
    assert.ok(!(await kernel.listAddresses(ul0.index, 6)).some((a) => a.address === "fd00::1"));
    await kernel.addAddress(address); // kept: the underlay for the routes and the vxlan device below
  });

  it("replaces IPv6 routes (gateway, onlink, protocol), lists them by family and protocol, deletes them twice", async () => {
    const viaGateway: RouteSpec = {
      dst: "fd30:0:0:5::",
      prefixLen: 64,
      gateway: "fd00::2",
      oif: ul0.index,
      protocol: OURS,
    };
    const onlink: RouteSpec = {
      dst: "fd30:0:0:6:0:0:0:0",
      prefixLen: 64,
      gateway: "fd99::1",
      oif: ul0.index,
      onlink: true,
      protocol: OURS,
      // Accepted, not failed on: IPv6 routes have no scope of their own.
      scope: "link",
    };
    for (const route of [viaGateway, viaGateway, onlink, onlink]) await kernel.replaceRoute(route);
    const common = { oif: ul0.index, protocol: OURS, table: 254, scope: "universe", type: "unicast", metric: 1024 };
    const ours = await kernel.listRoutes({ family: 6, protocol: OURS });
    assert.deepEqual(sortByDst(ours), [
      { dst: "fd30:0:0:5::", prefixLen: 64, gateway: "fd00::2", onlink: false, ...common },
      { dst: "fd30:0:0:6::", prefixLen: 64, gateway: "fd99::1", onlink: true, ...common },
    ]);
    assert.deepEqual(await kernel.listRoutes({ protocol: OURS }), [], "IPv4 only by default");
    const ip = await json<{ dst: string; gateway: string; flags: string[] }[]>(
      ns,
      "ip",
      "-6",
      "route",
      "show",
      "proto",
      String(OURS),
    );
    assert.deepEqual(
      ip.map((r) => [r.dst, r.gateway, r.flags]),
      [
        ["fd30:0:0:5::/64", "fd00::2", []],
        ["fd30:0:0:6::/64", "fd99::1", ["onlink"]],
      ],
    );

    await kernel.replaceRoute({ ...viaGateway, gateway: "fd00::3" });
    assert.deepEqual(
      sortByDst(await kernel.listRoutes({ family: 6, protocol: OURS })).map((r) => r.gateway),
      ["fd00::3", "fd99::1"],
      "replaced in place, not added",
    );

    for (const dst of ["fd30:0:0:5::", "fd30:0:0:6::", "fd30:0:0:5::"])
      await kernel.deleteRoute({ dst, prefixLen: 64, protocol: OURS });
    assert.deepEqual(await kernel.listRoutes({ family: 6, protocol: OURS }), []);
  });

  it("handles IPv6 default routes in big tables, device routes with metrics, /128s", async () => {
    await kernel.replaceRoute({
      dst: "::",
      prefixLen: 0,
      gateway: "fd99::1",
      oif: ul0.index,
      onlink: true,
      table: 1000,
      protocol: OURS,
    });
    await kernel.replaceRoute({ dst: "fd31::5", prefixLen: 128, oif: ul0.index, metric: 50, protocol: OURS });
    assert.deepEqual(
      (await kernel.listRoutes({ family: 6, table: 1000 })).map((r) => [r.dst, r.prefixLen, r.gateway, r.table]),
      [["::", 0, "fd99::1", 1000]],
    );
    const [device] = await kernel.listRoutes({ family: 6, oif: ul0.index, protocol: OURS });
    assert.deepEqual(device, {
      dst: "fd31::5",
      prefixLen: 128,
      oif: ul0.index,
      protocol: OURS,
      table: 254,
      scope: "universe",
      type: "unicast",
      onlink: false,
      metric: 50,
    });
    await kernel.deleteRoute({ dst: "::", prefixLen: 0, table: 1000 });
    await kernel.deleteRoute({ dst: "fd31::5", prefixLen: 128, oif: ul0.index });
    assert.deepEqual(await kernel.listRoutes({ family: 6, table: 1000 }), []);
    assert.deepEqual(await kernel.listRoutes({ family: 6, protocol: OURS }), []);
  });

  it("lists the kernel's own IPv6 routes faithfully, so that callers can filter by protocol", async () => {
    const all = await kernel.listRoutes({ family: 6, table: "all" });
    const has = (what: string, match: (r: RouteInfo) => boolean): void => {
      assert.ok(all.some(match), `${what} in ${JSON.stringify(all)}`);
    };
    has("fe80::/64 by the kernel", (r) => r.dst === "fe80::" && r.prefixLen === 64 && r.protocol === 2);
    has("the connected prefix", (r) => r.dst === "fd00::" && r.prefixLen === 64 && r.oif === ul0.index);
    has("ff00::/8 in table local", (r) => r.dst === "ff00::" && r.type === "multicast" && r.table === 255);
    has("our own address, local", (r) => r.dst === "fd00::1" && r.type === "local" && r.table === 255);
    assert.ok(
      all.every((r) => r.dst.includes(":")),
      "no IPv4 route among them",
    );
  });

  it("refuses a gateway of the other family, naming both fields, before the kernel sees it", async () => {
    for (const [dst, gateway] of [
      ["fd30:0:0:7::", "10.99.0.2"],
      ["10.244.7.0", "fd00::2"],
    ] as const) {
      await assert.rejects(kernel.replaceRoute({ dst, prefixLen: 24, gateway, oif: ul0.index }), (e) => {
        assert.ok(isTrellisError(e, "INVALID_ARGUMENT"));
        assert.ok(e.message.startsWith(`gateway "${gateway}" is invalid`), e.message);
        assert.ok(e.message.includes(`dst "${dst}"`), e.message);
        return true;
      });
    }
    await assert.rejects(kernel.replaceRoute({ dst: "fd30::", prefixLen: 129, oif: ul0.index }), (e) =>
      isTrellisError(e, "INVALID_ARGUMENT"),
    );
  });

  it("replaces permanent IPv6 neighbours (NDP) idempotently and deletes them twice", async () => {
    const neighbor = { index: ul0.index, ip: "fd00:0::2", mac: PEER_MAC, permanent: true };
    await kernel.replaceNeighbor(neighbor);
    await kernel.replaceNeighbor(neighbor);
    const mine = async (): Promise<unknown[]> =>
      (await kernel.listNeighbors(ul0.index, 6)).filter((n) => n.ip === "fd00::2");
    assert.deepEqual(await mine(), [
      { index: ul0.index, ip: "fd00::2", mac: PEER_MAC, state: "permanent", permanent: true },
    ]);
    assert.deepEqual(await kernel.listNeighbors(ul0.index), [], "IPv4 only by default");
    const ip = await json<{ dst: string; lladdr: string; state: string[] }[]>(
      ns,
      "ip",
      "-6",
      "neigh",
      "show",
      "dev",
      "ul0",
      "to",
      "fd00::2",
    );
    assert.deepEqual(ip, [{ dst: "fd00::2", lladdr: PEER_MAC, state: ["PERMANENT"] }]);

    await kernel.replaceNeighbor({ ...neighbor, mac: "0a:58:0a:f4:02:01" });
    assert.deepEqual(
      ((await mine()) as { mac: string }[]).map((n) => n.mac),
      ["0a:58:0a:f4:02:01"],
    );
    await kernel.deleteNeighbor({ index: ul0.index, ip: "fd00::2" });
    await kernel.deleteNeighbor({ index: ul0.index, ip: "fd00::2" });
    assert.deepEqual(await mine(), []);
  });

  it("creates a vxlan device on an IPv6 underlay (IFLA_VXLAN_LOCAL6) and programs IPv6 FDB destinations", async () => {
    const vxlan = await kernel.createVxlan({
      name: "vx6",
      vni: 6,
      port: 4789,
      local: "fd00:0:0:0::1",
      underlayIndex: ul0.index,
    });
    assert.deepEqual(vxlan.vxlan, { vni: 6, port: 4789, local: "fd00::1", underlayIndex: ul0.index, learning: false });
    const [shown] = await json<{ linkinfo: { info_data: { local6: string; id: number } } }[]>(
      ns,
      "ip",
      "-d",
      "link",
      "show",
      "vx6",
    );
    assert.deepEqual([shown?.linkinfo.info_data.local6, shown?.linkinfo.info_data.id], ["fd00::1", 6]);
    await kernel.setLink(vxlan.index, { up: true });

    const entry = { index: vxlan.index, mac: PEER_MAC, dst: "fd00::2" };
    await kernel.replaceFdb(entry);
    await kernel.replaceFdb(entry);
    assert.deepEqual(await kernel.listFdb(vxlan.index), [{ ...entry, permanent: true, self: true }]);
    const bridge = await json<{ mac: string; dst: string; flags: string[]; state: string }[]>(
      ns,
      "bridge",
      "fdb",
      "show",
      "dev",
      "vx6",
    );
    assert.deepEqual(bridge, [{ mac: PEER_MAC, dst: "fd00::2", flags: ["self"], state: "permanent" }]);
    await kernel.replaceFdb({ ...entry, dst: "FD00:0:0:0:0:0:0:3" });
    assert.deepEqual(
      (await kernel.listFdb(vxlan.index)).map((f) => f.dst),
      ["fd00::3"],
      "replaced, not appended",
    );
    await kernel.deleteFdb({ index: vxlan.index, mac: PEER_MAC });
    await kernel.deleteFdb({ index: vxlan.index, mac: PEER_MAC });
    assert.deepEqual(await kernel.listFdb(vxlan.index), []);

    await kernel.setLink(vxlan.index, { vxlan: { local: "fd00::5" } });
    assert.equal((await kernel.getLink(vxlan.index))?.vxlan?.local, "fd00::5", "changed in place");
    await kernel.deleteLink(vxlan.index);
  });

  it("still runs an IPv4-underlay vxlan with IPv4 FDB destinations beside it", async () => {
    await kernel.addAddress({ index: ul0.index, address: "10.99.0.1", prefixLen: 24 });
    const vxlan = await kernel.createVxlan({
      name: "vx4",
      vni: 4,
      port: 8472,
      local: "10.99.0.1",
      underlayIndex: ul0.index,
    });
    assert.equal(vxlan.vxlan?.local, "10.99.0.1");
    await kernel.setLink(vxlan.index, { up: true });
    const entry = { index: vxlan.index, mac: PEER_MAC, dst: "10.99.0.2" };
    await kernel.replaceFdb(entry);
    assert.deepEqual(await kernel.listFdb(vxlan.index), [{ ...entry, permanent: true, self: true }]);
    await kernel.deleteFdb(entry);
    assert.deepEqual(await kernel.listFdb(vxlan.index), []);
    await kernel.deleteLink(vxlan.index);
  });

  it("reports IPv6 routes and addresses as they come and go", async () => {
    const events: KernelEvent[] = [];
    const subscription = kernel.watch((event) => events.push(event));
    try {
      const route = { dst: "fd30:0:0:8::", prefixLen: 64, gateway: "fd00::2", oif: ul0.index, protocol: OURS };
      await kernel.replaceRoute(route);
      const isOurs = (e: KernelEvent, action: string): boolean =>
        e.type === "route" && e.action === action && e.route.dst === "fd30:0:0:8::";
      const added = await eventAfter(events, 0, (e) => isOurs(e, "new"));
      assert.ok(added.type === "route");
      assert.deepEqual(
        [added.route.protocol, added.route.gateway, added.route.oif, added.route.prefixLen],
        [OURS, "fd00::2", ul0.index, 64],
      );
      const from = events.length;
      await ipIn(ns, "-6", "route", "del", "fd30:0:0:8::/64");
      const removed = await eventAfter(events, from, (e) => isOurs(e, "del"));
      assert.ok(removed.type === "route" && removed.route.protocol === OURS);

      await kernel.addAddress({ index: ul0.index, address: "fd00::7", prefixLen: 64 });
      await eventAfter(
        events,
        from,
        (e) => e.type === "address" && e.action === "new" && e.address.address === "fd00::7",
      );
      await kernel.deleteAddress({ index: ul0.index, address: "fd00::7", prefixLen: 64 });
      await eventAfter(
        events,
        from,
        (e) => e.type === "address" && e.action === "del" && e.address.address === "fd00::7",
      );
    } finally {
      subscription.close();
    }
  });

  it("reads and writes IPv6 sysctls, global and per interface", async () => {
    const read = async (path: string): Promise<string> => (await inNetns(ns, "cat", [path])).stdout.trim();
    await kernel.setSysctl("net.ipv6.conf.all.forwarding", "1");
    assert.equal(await kernel.getSysctl("net.ipv6.conf.all.forwarding"), "1");
    assert.equal(await read("/proc/sys/net/ipv6/conf/all/forwarding"), "1");
    await kernel.setSysctl("net.ipv6.conf.all.forwarding", "0");
    assert.equal(await read("/proc/sys/net/ipv6/conf/all/forwarding"), "0");

    await ipIn(ns, "link", "add", "v6.1", "type", "bridge");
    for (const value of ["2", "0"]) {
      await kernel.setSysctl("net.ipv6.conf.v6/1.accept_ra", value);
      assert.equal(await kernel.getSysctl("net.ipv6.conf.v6/1.accept_ra"), value);
      assert.equal(await read("/proc/sys/net/ipv6/conf/v6.1/accept_ra"), value);
    }
    await kernel.setSysctl("net.ipv6.conf.ul0.accept_ra", "0");
    assert.equal(await kernel.getSysctl("net.ipv6.conf.ul0.accept_ra"), "0");
  });
});

function sortByDst(routes: RouteInfo[]): RouteInfo[] {
  return [...routes].sort((a, b) => a.dst.localeCompare(b.dst));
}
