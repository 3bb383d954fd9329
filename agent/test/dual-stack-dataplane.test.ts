// The IPv6 plane beside the IPv4 one, over the fake kernel: a pass from empty programs both (vxlan over an IPv6
// underlay, IPv6 over the IPv4 device without one, IPv6-only, host-gw, DirectRouting); peers without IPv6 data are
// skipped with the reason; drift of every IPv6 entry is repaired, also on the kernel's event alone; a restart adopts
// what is there; what the kernel does with IPv6 by itself is left alone.
import assert from "node:assert/strict";
import { parseCidr } from "#lib/ipv4.js";
import { parseCidr6 } from "#lib/ipv6.js";
import { fakeNode, type FakeKernel } from "../../lib/test/support/fake-kernel.js";
import type { BackendConfig } from "../src/config/network-config.js";
import type { OwnLease } from "../src/dataplane/backends/backend.js";
import { backendFor } from "../src/dataplane/backends/registry.js";
import { TRELLIS_ROUTE_PROTOCOL } from "../src/dataplane/marks.js";
import { DataplanePass, type DataplaneEvent } from "../src/dataplane/pass.js";
import { Reconciler } from "../src/dataplane/reconciler.js";
import type { LeaseAttrs } from "../src/lease/lease-codec.js";
import type { Peer } from "../src/lease/peers.js";
import { FakeClock } from "./support/fake-clock.js";

const VXLAN: BackendConfig = { type: "vxlan", vni: 1, port: 8472, directRouting: false };
const HOST_GW: BackendConfig = { type: "host-gw", vni: 1, port: 8472, directRouting: false };
const OWN: OwnLease = {
  subnet: parseCidr("172.30.1.0/24")!,
  vtepMac: "02:00:00:00:00:11",
  subnet6: parseCidr6("fd30:0:0:1::/64")!,
  vtepMac6: "02:00:00:00:06:11",
};
const mac = (n: number): string => `02:00:00:00:00:${(0x10 + n).toString(16)}`;
const mac6 = (n: number): string => `02:00:00:00:06:${(0x10 + n).toString(16)}`;

/** Lease attributes to change; an undefined one is left out. */
type AttrChanges = { [K in keyof LeaseAttrs]?: LeaseAttrs[K] | undefined };

/** Peer n: 172.30.n.0/24 and fd30:0:0:n::/64 at 10.42.0.(10+n) and fd00:42::(10+n), both VTEP MACs. */
function peer(n: number, changes: AttrChanges = {}, subnet6 = true): Peer {
  const attrs: AttrChanges = {
    publicIp: `10.42.0.${10 + n}`,
    publicIpv6: `fd00:42::${10 + n}`,
    backendType: "vxlan",
    vni: 1,
    vtepMac: mac(n),
    v6: { vni: 1, vtepMac: mac6(n) },
    ...changes,
  };
  return {
    subnet: parseCidr(`172.30.${n}.0/24`)!,
    ...(subnet6 ? { subnet6: parseCidr6(`fd30:0:0:${n}::/64`)! } : {}),
    attrs: Object.fromEntries(Object.entries(attrs).filter(([, v]) => v !== undefined)) as unknown as LeaseAttrs,
    reserved: false,
  };
}

interface Setup {
  kernel: FakeKernel;
  peers: Map<string, Peer>;
  events: DataplaneEvent[];
  pass: DataplanePass;
  restart(): DataplanePass;
}

function node(underlay6: boolean): FakeKernel {
  const kernel = fakeNode({ name: "eth0", mtu: 1500, address: "10.42.0.11", prefixLen: 24 });
  if (underlay6) kernel.world.ns("host").addresses.push({ index: 2, address: "fd00:42::11", prefixLen: 64 });
  return kernel;
}

function setup(
  options: {
    backend?: BackendConfig;
    peers?: Peer[];
    underlay6?: boolean;
    enableIPv4?: boolean;
    own?: OwnLease;
  } = {},
): Setup {
  const underlay6 = options.underlay6 ?? true;
  const kernel = node(underlay6);
  const known = new Map((options.peers ?? [peer(2), peer(3)]).map((p) => [`${p.subnet.ip}`, p]));
  const events: DataplaneEvent[] = [];
  const make = (): DataplanePass => {
    const pass = new DataplanePass({
      kernel,
      backend: backendFor(options.backend ?? VXLAN),
      deviceName: "flannel.1",
      device6Name: "flannel-v6.1",
      underlayName: "eth0",
      localIp: "10.42.0.11",
      localIp6: underlay6 ? "fd00:42::11" : undefined,
      enableIPv4: options.enableIPv4,
      own: () => options.own ?? OWN,
      peers: () => known.values(),
    });
    pass.events.on((e) => events.push(e));
    return pass;
  };
  return { kernel, peers: known, events, pass: make(), restart: make };
}

const ours = (kernel: FakeKernel, v6: boolean): string[] =>
  kernel.routes
    .filter((r) => r.protocol === TRELLIS_ROUTE_PROTOCOL && r.dst.includes(":") === v6)
    .map((r) => `${r.dst}/${r.prefixLen} via ${r.gateway ?? "-"} dev ${r.oif ?? "-"}${r.onlink ? " onlink" : ""}`)
    .sort();
const neighbors6 = (kernel: FakeKernel): string[] =>
  kernel.neighbors
    .filter((n) => n.ip.includes(":"))
    .map((n) => `${n.ip} ${n.mac ?? ""} dev ${n.index} ${n.state}`)
    .sort();
const fdbOn = (kernel: FakeKernel, index: number): string[] =>
  kernel.fdb
    .filter((f) => f.index === index)
    .map((f) => `${f.mac} → ${f.dst ?? ""}`)
    .sort();
const entries = (events: DataplaneEvent[], type: DataplaneEvent["type"], family: 4 | 6 = 6): string[] =>
  events.flatMap((e) => (e.type === type && "kind" in e && e.family === family ? [`${e.kind} ${e.key}`] : [])).sort();

/** Peers 2 and 3 programmed in the IPv6 plane over an IPv6 underlay (flannel-v6.1). */
function assertV6Programmed(kernel: FakeKernel, peerNumbers = [2, 3]): void {
  const v6 = kernel.byName("flannel-v6.1");
  assert.ok(v6 !== undefined, "the IPv6 device exists");
  assert.deepEqual(
    [v6.kind, v6.up, v6.mtu, v6.mac, v6.vxlan?.vni, v6.vxlan?.port, v6.vxlan?.local, v6.vxlan?.learning],
    ["vxlan", true, 1430, "02:00:00:00:06:11", 1, 8472, "fd00:42::11", false],
    "VNI and port of the network, local = the IPv6 underlay address, MTU 1500 - 70, its own MAC, learning off",
  );
  assert.equal(v6.vxlan?.underlayIndex, 2);
  assert.deepEqual(
    kernel.addresses.filter((a) => a.index === v6.index).map((a) => `${a.address}/${a.prefixLen}`),
    ["fd30:0:0:1::/128"],
  );
  assert.deepEqual(
    ours(kernel, true),
    peerNumbers.map((n) => `fd30:0:0:${n}::/64 via fd30:0:0:${n}:: dev ${v6.index} onlink`).sort(),
  );
  assert.deepEqual(
    neighbors6(kernel),
    peerNumbers.map((n) => `fd30:0:0:${n}:: ${mac6(n)} dev ${v6.index} permanent`).sort(),
  );
  assert.deepEqual(fdbOn(kernel, v6.index), peerNumbers.map((n) => `${mac6(n)} → fd00:42::${10 + n}`).sort());
}

describe("dual-stack dataplane (fake kernel)", () => {
  describe("vxlan over an IPv6 underlay", () => {
    it("a pass from empty programs both planes: flannel.1 as before, flannel-v6.1 with its address and each peer's route, NDP and FDB entry", async () => {
      const { kernel, pass, events } = setup();
      assert.deepEqual(await pass.run("start"), { converged: true, error: undefined });
      assertV6Programmed(kernel);
      const v4 = kernel.byName("flannel.1")!;
      assert.deepEqual([v4.mtu, v4.vxlan?.local], [1450, "10.42.0.11"]);
      assert.deepEqual(ours(kernel, false), [
        `172.30.2.0/24 via 172.30.2.0 dev ${v4.index} onlink`,
        `172.30.3.0/24 via 172.30.3.0 dev ${v4.index} onlink`,
      ]);
      assert.deepEqual(fdbOn(kernel, v4.index), [`${mac(2)} → 10.42.0.12`, `${mac(3)} → 10.42.0.13`]);
      assert.deepEqual(entries(events, "programmed"), [
        "address fd30:0:0:1::/128",
        `fdb ${mac6(2)}`,
        `fdb ${mac6(3)}`,
        "neighbor fd30:0:0:2::",
        "neighbor fd30:0:0:3::",
        "route fd30:0:0:2::/64",
        "route fd30:0:0:3::/64",
      ]);
      assert.deepEqual([...pass.programmedPeers()].sort(), [
        "172.30.2.0/24",
        "172.30.3.0/24",
        "fd30:0:0:2::/64",
        "fd30:0:0:3::/64",
      ]);
      assert.ok(events.some((e) => e.type === "device" && e.name === "flannel-v6.1" && e.action === "created"));
    });

    it("turns IPv6 forwarding on, and IPv6 on and router advertisements off on its device, once", async () => {
      const { kernel, pass, events } = setup();
      kernel.world.ns("host").sysctls.set("net.ipv6.conf.flannel-v6/1.accept_ra", "1");
      kernel.world.ns("host").sysctls.set("net.ipv6.conf.flannel-v6/1.disable_ipv6", "1");
      assert.ok((await pass.run("start")).converged);
      const sysctls = kernel.world.ns("host").sysctls;
      assert.deepEqual(
        [
          sysctls.get("net.ipv6.conf.all.forwarding"),
          sysctls.get("net.ipv6.conf.flannel-v6/1.accept_ra"),
          sysctls.get("net.ipv6.conf.flannel-v6/1.disable_ipv6"),
        ],
        ["1", "0", "0"],
      );
      assert.deepEqual(
        events.flatMap((e) => (e.type === "sysctl" ? [`${e.name} ${e.previous} → ${e.value}`] : [])),
        [
          "net.ipv6.conf.all.forwarding 0 → 1",
          "net.ipv6.conf.flannel-v6/1.disable_ipv6 1 → 0",
          "net.ipv6.conf.flannel-v6/1.accept_ra 1 → 0",
        ],
      );
      events.length = 0;
      assert.ok((await pass.run("periodic")).converged);
      assert.deepEqual(
        events.filter((e) => e.type === "sysctl"),
        [],
        "set once: a later pass finds them right",
      );
    });

    it("skips, with the reason, peers whose IPv6 half it cannot serve; their IPv4 half is programmed", async () => {
      const { kernel, pass, events } = setup({
        peers: [
          peer(2),
          peer(4, {}, false), // an IPv4-only node
          peer(5, { publicIpv6: undefined, v6: undefined }), // its IPv6 pods tunnelled over IPv4
          peer(6, { v6: undefined }), // PublicIPv6 but no BackendV6Data
          peer(7, { v6: { vni: 9, vtepMac: mac6(7) } }),
        ],
      });
      assert.ok((await pass.run("start")).converged);
      assert.deepEqual(ours(kernel, true).length, 1);
      assert.equal(ours(kernel, false).length, 5, "every peer's IPv4 subnet is routed");
      assert.deepEqual([...pass.skippedPeers(6)].sort(), [
        ["172.30.4.0/24", "lease has no IPv6 subnet (the node runs IPv4 only)"],
        [
          "fd30:0:0:5::/64",
          "lease has no PublicIPv6: its IPv6 pods are tunnelled over IPv4, this node's over IPv6 (give every node an IPv6 address on its underlay, or none)",
        ],
        ["fd30:0:0:6::/64", "lease has no BackendV6Data.VtepMAC"],
        ["fd30:0:0:7::/64", "peer uses VNI 9, this network uses 1"],
      ]);
      assert.deepEqual([...pass.skippedPeers(4)], [], "the IPv4 plane skips nobody");
      assert.equal(events.filter((e) => e.type === "peer-skipped" && e.peer.family === 6).length, 4);
      assert.ok((await pass.run("periodic")).converged);
      assert.equal(events.filter((e) => e.type === "peer-skipped").length, 4, "reported once, not every pass");
    });

    it("DirectRouting: a peer whose PublicIPv6 is on the underlay's IPv6 network gets a plain route via it", async () => {
      const { kernel, pass } = setup({
        backend: { ...VXLAN, directRouting: true },
        peers: [peer(2), peer(3, { publicIp: "10.50.0.3", publicIpv6: "fd00:50::3" })],
      });
      assert.ok((await pass.run("start")).converged);
      const v6 = kernel.byName("flannel-v6.1")!;
      assert.deepEqual(ours(kernel, true), [
        "fd30:0:0:2::/64 via fd00:42::12 dev 2",
        `fd30:0:0:3::/64 via fd30:0:0:3:: dev ${v6.index} onlink`,
      ]);
      assert.deepEqual(fdbOn(kernel, v6.index), [`${mac6(3)} → fd00:50::3`]);
    });
  });

  describe("drift of an IPv6 entry: repaired by the next full pass, reported as a repair", () => {
    async function converged(): Promise<Setup> {
      const s = setup();
      assert.ok((await s.pass.run("start")).converged);
      s.events.length = 0;
      s.kernel.requests.length = 0;
      return s;
    }

    it("a route deleted by hand", async () => {
      const { kernel, pass, events } = await converged();
      assert.equal(
        kernel.removeByHand("route", (r) => r.dst === "fd30:0:0:2::"),
        1,
      );
      assert.ok((await pass.run("kernel")).converged);
      assertV6Programmed(kernel);
      assert.deepEqual(entries(events, "repaired"), ["route fd30:0:0:2::/64"]);
      assert.deepEqual(kernel.requests, ["replaceRoute fd30:0:0:2::/64"]);
    });

    it("an NDP entry deleted by hand, and one changed to another MAC", async () => {
      const { kernel, pass, events } = await converged();
      kernel.removeByHand("neighbor", (n) => n.ip === "fd30:0:0:3::");
      const v6 = kernel.byName("flannel-v6.1")!;
      await kernel.replaceNeighbor({ index: v6.index, ip: "fd30:0:0:2::", mac: "02:00:00:00:00:99", permanent: true });
      assert.ok((await pass.run("kernel")).converged);
      assertV6Programmed(kernel);
      assert.deepEqual(entries(events, "repaired"), ["neighbor fd30:0:0:2::", "neighbor fd30:0:0:3::"]);
    });

    it("an FDB entry deleted by hand", async () => {
      const { kernel, pass, events } = await converged();
      kernel.removeByHand("fdb", (f) => f.mac === mac6(2));
      assert.ok((await pass.run("kernel")).converged);
      assertV6Programmed(kernel);
      assert.deepEqual(entries(events, "repaired"), [`fdb ${mac6(2)}`]);
    });

    it("the device's address deleted by hand", async () => {
      const { kernel, pass, events } = await converged();
      const v6 = kernel.byName("flannel-v6.1")!;
      await kernel.deleteAddress({ index: v6.index, address: "fd30:0:0:1::", prefixLen: 128 });
      assert.ok((await pass.run("kernel")).converged);
      assertV6Programmed(kernel);
      assert.deepEqual(entries(events, "repaired"), ["address fd30:0:0:1::/128"]);
    });

    it("the IPv6 device deleted: made again with everything on it; the IPv4 plane untouched", async () => {
      const { kernel, pass, events } = await converged();
      const v4 = kernel.byName("flannel.1")!;
      await kernel.deleteLink(kernel.byName("flannel-v6.1")!.index);
      assert.deepEqual(ours(kernel, true), [], "the kernel drops the device's routes with it");
      assert.ok((await pass.run("kernel")).converged);
      assertV6Programmed(kernel);
      assert.equal(kernel.byName("flannel.1")?.index, v4.index);
      assert.ok(
        events.some(
          (e) =>
            e.type === "device" &&
            e.name === "flannel-v6.1" &&
            e.action === "created" &&
            e.reason === "device was deleted" &&
            e.repair,
        ),
      );
      assert.deepEqual(entries(events, "repaired"), ["route fd30:0:0:2::/64", "route fd30:0:0:3::/64"]);
      assert.deepEqual(entries(events, "programmed"), [
        "address fd30:0:0:1::/128",
        `fdb ${mac6(2)}`,
        `fdb ${mac6(3)}`,
        "neighbor fd30:0:0:2::",
        "neighbor fd30:0:0:3::",
      ]);
      assert.deepEqual(entries(events, "programmed", 4), [], "nothing of the IPv4 plane was touched");
    });

    it("the IPv6 device given an IPv4 local address: made again (the kernel cannot change the family in place)", async () => {
      const { kernel, pass, events } = await converged();
      const v6 = kernel.byName("flannel-v6.1")!;
      kernel.edit({ ...v6, vxlan: { ...v6.vxlan!, local: "10.42.0.11" } });
      assert.ok((await pass.run("kernel")).converged);
      assertV6Programmed(kernel);
      assert.ok(
        events.some(
          (e) => e.type === "device" && e.action === "recreated" && /local 10\.42\.0\.11 → fd00:42::11/.test(e.reason),
        ),
      );
    });
  });

  describe("restart: adoption of what a previous run left", () => {
    it("a new pass over a converged dual-stack kernel changes nothing at all", async () => {
      const s = setup();
      assert.ok((await s.pass.run("start")).converged);
      // What the kernel adds by itself on an IPv6 device: a link-local address, NDP entries for multicast.
      const v6 = s.kernel.byName("flannel-v6.1")!;
      await s.kernel.addAddress({ index: v6.index, address: "fe80::ff:1", prefixLen: 64 });
      s.kernel.world
        .ns("host")
        .neighbors.push(
          { index: v6.index, ip: "ff02::1", mac: "33:33:00:00:00:01", state: "noarp", permanent: false },
          { index: v6.index, ip: "fe80::9", mac: "02:00:00:00:00:99", state: "stale", permanent: false },
        );
      s.kernel.requests.length = 0;
      s.events.length = 0;
      const restarted = s.restart();
      assert.deepEqual(await restarted.run("start"), { converged: true, error: undefined });
      assert.deepEqual(s.kernel.requests, [], "nothing deleted, re-created or re-added (the kernel's own kept)");
      assert.deepEqual(
        s.events.filter((e) => e.type !== "pass"),
        [],
      );
      assert.equal([...restarted.programmedPeers()].length, 4);
    });

    it("removes what is ours of the IPv6 plane and no peer needs, nothing else", async () => {
      const s = setup();
      assert.ok((await s.pass.run("start")).converged);
      s.peers.delete(`${peer(3).subnet.ip}`);
      await s.kernel.replaceRoute({ dst: "fd99::", prefixLen: 64, gateway: "fd00:42::1", oif: 2, protocol: 4 });
      s.kernel.requests.length = 0;
      s.events.length = 0;
      assert.ok((await s.restart().run("start")).converged);
      assert.deepEqual(entries(s.events, "stale-removed"), [
        `fdb ${mac6(3)}`,
        "neighbor fd30:0:0:3::",
        "route fd30:0:0:3::/64",
      ]);
      assert.ok(
        s.kernel.routes.some((r) => r.dst === "fd99::" && r.protocol === 4),
        "a static IPv6 route stays",
      );
      assertV6Programmed(s.kernel, [2]);
    });
  });

  describe("without an IPv6 underlay address", () => {
    it("dual-stack: IPv6 rides on flannel.1 (one IPv4 VXLAN socket per VNI and port), with the peers' BackendData MACs", async () => {
      const { kernel, pass } = setup({
        underlay6: false,
        own: { ...OWN, vtepMac6: undefined },
        peers: [
          peer(2, { publicIpv6: undefined, v6: undefined }),
          peer(3, {}), // has an IPv6 underlay: its tunnel runs over IPv6
        ],
      });
      assert.ok((await pass.run("start")).converged);
      assert.equal(kernel.byName("flannel-v6.1"), undefined, "no IPv6 device");
      const v4 = kernel.byName("flannel.1")!;
      assert.deepEqual(
        kernel.addresses
          .filter((a) => a.index === v4.index)
          .map((a) => `${a.address}/${a.prefixLen}`)
          .sort(),
        ["172.30.1.0/32", "fd30:0:0:1::/128"],
      );
      assert.deepEqual(ours(kernel, true), [`fd30:0:0:2::/64 via fd30:0:0:2:: dev ${v4.index} onlink`]);
      assert.deepEqual(neighbors6(kernel), [`fd30:0:0:2:: ${mac(2)} dev ${v4.index} permanent`]);
      assert.deepEqual(
        fdbOn(kernel, v4.index),
        [`${mac(2)} → 10.42.0.12`, `${mac(3)} → 10.42.0.13`],
        "one FDB entry per peer",
      );
      assert.match(
        pass.skippedPeers(6).get("fd30:0:0:3::/64") ?? "",
        /has PublicIPv6 fd00:42::13, but this node has no IPv6 address on eth0/,
      );
    });

    it("dual-stack with DirectRouting: a peer routed directly over IPv4 keeps the FDB entry its IPv6 half needs, pass after pass", async () => {
      const { kernel, pass, events } = setup({
        underlay6: false,
        backend: { ...VXLAN, directRouting: true },
        own: { ...OWN, vtepMac6: undefined },
        peers: [peer(2, { publicIpv6: undefined, v6: undefined })],
      });
      assert.ok((await pass.run("start")).converged);
      const v4 = kernel.byName("flannel.1")!;
      assert.deepEqual(ours(kernel, false), ["172.30.2.0/24 via 10.42.0.12 dev 2"]);
      assert.deepEqual(fdbOn(kernel, v4.index), [`${mac(2)} → 10.42.0.12`]);
      kernel.requests.length = 0;
      events.length = 0;
      assert.ok((await pass.run("periodic")).converged);
      assert.ok((await pass.run("periodic")).converged);
      assert.deepEqual(kernel.requests, [], "the two planes agree about the entry: no flapping");
    });

    it("IPv6-only: only flannel-v6.1, over an IPv4 local address, with the peers' BackendV6Data", async () => {
      const { kernel, pass } = setup({
        underlay6: false,
        enableIPv4: false,
        own: { ...OWN, subnet: parseCidr("0.0.0.0/0")!, vtepMac: undefined },
        peers: [
          {
            ...peer(2, { publicIpv6: undefined, vtepMac: undefined, vni: undefined }),
            subnet: parseCidr("0.0.0.0/0")!,
          },
        ],
      });
      assert.ok((await pass.run("start")).converged);
      assert.equal(kernel.byName("flannel.1"), undefined, "no IPv4 device");
      const v6 = kernel.byName("flannel-v6.1")!;
      assert.deepEqual([v6.mtu, v6.vxlan?.local], [1450, "10.42.0.11"]);
      assert.deepEqual(ours(kernel, false), [], "no IPv4 route");
      assert.deepEqual(ours(kernel, true), [`fd30:0:0:2::/64 via fd30:0:0:2:: dev ${v6.index} onlink`]);
      assert.deepEqual(fdbOn(kernel, v6.index), [`${mac6(2)} → 10.42.0.12`]);
    });
  });

  describe("host-gw", () => {
    it("routes each peer's IPv6 subnet via its PublicIPv6 on the underlay; skips one without it or off-link", async () => {
      const gw = { backendType: "host-gw", vni: undefined, vtepMac: undefined, v6: undefined };
      const { kernel, pass } = setup({
        backend: HOST_GW,
        peers: [peer(2, gw), peer(3, { ...gw, publicIpv6: undefined }), peer(4, { ...gw, publicIpv6: "fd00:50::4" })],
      });
      assert.ok((await pass.run("start")).converged);
      assert.equal(kernel.byName("flannel-v6.1"), undefined);
      assert.deepEqual(ours(kernel, true), ["fd30:0:0:2::/64 via fd00:42::12 dev 2"]);
      assert.deepEqual([...pass.skippedPeers(6)].sort(), [
        ["fd30:0:0:3::/64", "lease has no PublicIPv6; host-gw routes its IPv6 subnet via it"],
        [
          "fd30:0:0:4::/64",
          "public IP fd00:50::4 is not on a network directly connected to eth0; host-gw needs every node on one L2 network (use vxlan)",
        ],
      ]);
      assert.equal(kernel.world.ns("host").sysctls.get("net.ipv6.conf.all.forwarding"), "1");
    });
  });

  describe("reconciler: IPv6 kernel events", () => {
    it("an IPv6 route, NDP or FDB entry of ours deleted by hand is repaired on the kernel's event alone; the kernel's own IPv6 churn is not drift", async () => {
      const kernel = node(true);
      const clock = new FakeClock();
      const reconciler = new Reconciler({
        kernel,
        clock,
        backend: backendFor(VXLAN),
        deviceName: "flannel.1",
        device6Name: "flannel-v6.1",
        underlayName: "eth0",
        localIp: "10.42.0.11",
        localIp6: "fd00:42::11",
        own: () => OWN,
        peers: () => [peer(2)],
        resyncIntervalMs: 600_000,
      });
      const kernelPasses: DataplaneEvent[] = [];
      reconciler.events.on((e) => {
        if (e.type === "pass" && e.trigger === "kernel") kernelPasses.push(e);
      });
      const controller = new AbortController();
      const running = reconciler.run(controller.signal);
      assert.ok((await reconciler.pass("start")).converged);
      await clock.advance(10); // our own creation events: not drift
      const v6 = kernel.byName("flannel-v6.1")!;
      // The kernel's own: link-local addresses, NDP entries for link-local and multicast neighbours.
      const linkLocal = { index: v6.index, address: "fe80::1", prefixLen: 64 };
      await kernel.addAddress(linkLocal);
      await kernel.deleteAddress(linkLocal);
      await kernel.replaceNeighbor({ index: v6.index, ip: "fe80::2", mac: "02:00:00:00:00:12", permanent: false });
      await kernel.deleteNeighbor({ index: v6.index, ip: "fe80::2" });
      await clock.advance(20);
      assert.deepEqual(kernelPasses, [], "not drift");

      const cases: [string, () => void, () => boolean][] = [
        [
          "route",
          () => kernel.removeByHand("route", (r) => r.dst === "fd30:0:0:2::"),
          () => ours(kernel, true).length === 1,
        ],
        [
          "neighbour",
          () => kernel.removeByHand("neighbor", (n) => n.ip === "fd30:0:0:2::"),
          () => neighbors6(kernel).length === 1,
        ],
        ["fdb", () => kernel.removeByHand("fdb", (f) => f.mac === mac6(2)), () => fdbOn(kernel, v6.index).length === 1],
      ];
      for (const [what, remove, back] of cases) {
        const passesBefore: number = kernelPasses.length;
        remove();
        assert.ok(!back(), `${what} gone`);
        await clock.advance(5);
        assert.equal(kernelPasses.length, passesBefore + 1, `the ${what}'s deletion event alone asks for a pass`);
        assert.ok(back(), `${what} repaired`);
      }
      controller.abort();
      await running;
    });
  });
});
