// One dataplane pass over the fake kernel, for each backend: from empty, after drift of every kind, with peers added,
// removed and changed, with an errno in the middle, and after a restart (adoption: nothing that matches is touched).
import assert from "node:assert/strict";
import { parseCidr } from "#lib/ipv4.js";
import { fakeNode, type FakeKernel } from "../../lib/test/support/fake-kernel.js";
import type { BackendConfig } from "../src/config/network-config.js";
import { backendFor } from "../src/dataplane/backends/registry.js";
import { TRELLIS_ROUTE_PROTOCOL } from "../src/dataplane/marks.js";
import { DataplanePass, ForeignLinkError, type DataplaneEvent } from "../src/dataplane/pass.js";
import type { Peer } from "../src/lease/peers.js";

const VXLAN: BackendConfig = { type: "vxlan", vni: 1, port: 8472, directRouting: false };
const HOST_GW: BackendConfig = { type: "host-gw", vni: 1, port: 8472, directRouting: false };
const OWN = { subnet: parseCidr("172.30.1.0/24")!, vtepMac: "02:00:00:00:00:11" };

function peer(n: number, publicIp = `10.42.0.${10 + n}`, backendType = "vxlan"): Peer {
  const mac = `02:00:00:00:00:${(0x10 + n).toString(16)}`;
  return {
    subnet: parseCidr(`172.30.${n}.0/24`)!,
    attrs: { publicIp, backendType, vni: 1, vtepMac: mac },
    reserved: false,
  };
}

interface Setup {
  kernel: FakeKernel;
  peers: Map<string, Peer>;
  events: DataplaneEvent[];
  pass: DataplanePass;
  /** A new pass over the same kernel and peers: what a restarted agent runs. */
  restart(): DataplanePass;
}

function setup(
  backend: BackendConfig = VXLAN,
  peers: Peer[] = [peer(2), peer(3)],
  kernel = fakeNode({ name: "eth0", mtu: 1500, address: "10.42.0.11", prefixLen: 24 }),
): Setup {
  const known = new Map(peers.map((p) => [`${p.subnet.ip}`, p]));
  const events: DataplaneEvent[] = [];
  const make = (): DataplanePass => {
    const pass = new DataplanePass({
      kernel,
      backend: backendFor(backend),
      deviceName: "flannel.1",
      underlayName: "eth0",
      localIp: "10.42.0.11",
      own: () => OWN,
      peers: () => known.values(),
    });
    pass.events.on((e) => events.push(e));
    return pass;
  };
  return { kernel, peers: known, events, pass: make(), restart: make };
}

const device = (kernel: FakeKernel) => kernel.byName("flannel.1");
const routes = (kernel: FakeKernel): string[] =>
  kernel.routes
    .filter((r) => r.protocol === TRELLIS_ROUTE_PROTOCOL)
    .map((r) => `${r.dst}/${r.prefixLen} via ${r.gateway ?? "-"}${r.onlink ? " onlink" : ""}`)
    .sort();
const entries = (events: DataplaneEvent[], type: DataplaneEvent["type"]): string[] =>
  events.flatMap((e) => (e.type === type && "kind" in e ? [`${e.kind} ${e.key}`] : [])).sort();
/** The vxlan state for peers 2 and 3 (and any others), as the kernel should hold it. */
function assertVxlanProgrammed(kernel: FakeKernel, peerNumbers = [2, 3]): void {
  const link = device(kernel)!;
  assert.equal(link.kind, "vxlan");
  assert.deepEqual(
    [link.up, link.mtu, link.mac, link.vxlan?.learning, link.vxlan?.vni, link.vxlan?.local],
    [true, 1450, "02:00:00:00:00:11", false, 1, "10.42.0.11"],
  );
  assert.deepEqual(
    kernel.addresses.filter((a) => a.index === link.index).map((a) => `${a.address}/${a.prefixLen}`),
    ["172.30.1.0/32"],
  );
  assert.deepEqual(routes(kernel), peerNumbers.map((n) => `172.30.${n}.0/24 via 172.30.${n}.0 onlink`).sort());
  assert.deepEqual(
    kernel.neighbors.map((n) => `${n.ip} ${n.mac ?? ""} ${n.state}`).sort(),
    peerNumbers.map((n) => `172.30.${n}.0 02:00:00:00:00:${(0x10 + n).toString(16)} permanent`).sort(),
  );
  assert.deepEqual(
    kernel.fdb.map((f) => `${f.mac} → ${f.dst ?? ""}`).sort(),
    peerNumbers.map((n) => `02:00:00:00:00:${(0x10 + n).toString(16)} → 10.42.0.${10 + n}`).sort(),
  );
}

describe("dataplane pass (fake kernel)", () => {
  describe("from empty", () => {
    it("vxlan: creates the device, its address and each peer's route, ARP and FDB entry, and converges", async () => {
      const { kernel, pass, events } = setup();
      const outcome = await pass.run("start");
      assert.deepEqual(outcome, { converged: true, error: undefined });
      assertVxlanProgrammed(kernel);
      assert.ok(
        events.some((e) => e.type === "device" && e.action === "created" && e.reason === "first start" && !e.repair),
      );
      assert.deepEqual(entries(events, "programmed"), [
        "address 172.30.1.0/32",
        "fdb 02:00:00:00:00:12",
        "fdb 02:00:00:00:00:13",
        "neighbor 172.30.2.0",
        "neighbor 172.30.3.0",
        "route 172.30.2.0/24",
        "route 172.30.3.0/24",
      ]);
      assert.deepEqual([...pass.programmedPeers()].sort(), ["172.30.2.0/24", "172.30.3.0/24"]);
      assert.ok(pass.converged);
    });

    it("host-gw: no device, a route via each peer's public IP on the underlay, and a skip for an unreachable peer", async () => {
      const { kernel, pass, events } = setup(HOST_GW, [
        peer(2, "10.42.0.12", "host-gw"),
        peer(3, "10.50.0.3", "host-gw"),
      ]);
      assert.ok((await pass.run("start")).converged);
      assert.equal(device(kernel), undefined);
      assert.deepEqual(routes(kernel), ["172.30.2.0/24 via 10.42.0.12"]);
      assert.equal(kernel.routes.find((r) => r.dst === "172.30.2.0")?.oif, 2);
      assert.deepEqual([...pass.skippedPeers().keys()], ["172.30.3.0/24"]);
      assert.ok(
        events.some(
          (e) => e.type === "peer-skipped" && /not on a network directly connected to eth0/.test(e.peer.reason),
        ),
      );
      assert.deepEqual(
        kernel.requests.filter((r) => r.startsWith("create")),
        [],
      );
    });

    it("vxlan + DirectRouting: a plain route for the peer on the same L2, the tunnel for the other", async () => {
      const { kernel, pass } = setup({ ...VXLAN, directRouting: true }, [peer(2), peer(3, "10.50.0.3")]);
      assert.ok((await pass.run("start")).converged);
      assert.deepEqual(routes(kernel), ["172.30.2.0/24 via 10.42.0.12", "172.30.3.0/24 via 172.30.3.0 onlink"]);
      assert.deepEqual(
        kernel.fdb.map((f) => f.dst),
        ["10.50.0.3"],
      );
    });
  });

  describe("drift: the next full pass repairs it, and says it was a repair", () => {
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
        kernel.removeByHand("route", (r) => r.dst === "172.30.2.0"),
        1,
      );
      assert.ok((await pass.run("kernel")).converged);
      assertVxlanProgrammed(kernel);
      assert.deepEqual(entries(events, "repaired"), ["route 172.30.2.0/24"]);
      assert.deepEqual(kernel.requests, ["replaceRoute 172.30.2.0/24"]);
    });

    it("a route changed by hand (another gateway)", async () => {
      const { kernel, pass, events } = await converged();
      const link = device(kernel)!;
      await kernel.replaceRoute({
        dst: "172.30.3.0",
        prefixLen: 24,
        gateway: "10.42.0.99",
        oif: 2,
        protocol: TRELLIS_ROUTE_PROTOCOL,
      });
      assert.ok((await pass.run("periodic")).converged);
      assertVxlanProgrammed(kernel);
      assert.equal(kernel.routes.find((r) => r.dst === "172.30.3.0")?.oif, link.index);
      assert.deepEqual(entries(events, "repaired"), ["route 172.30.3.0/24"]);
    });

    it("a neighbour (ARP) entry deleted by hand", async () => {
      const { kernel, pass, events } = await converged();
      kernel.removeByHand("neighbor", (n) => n.ip === "172.30.3.0");
      assert.ok((await pass.run("kernel")).converged);
      assertVxlanProgrammed(kernel);
      assert.deepEqual(entries(events, "repaired"), ["neighbor 172.30.3.0"]);
    });

    it("an FDB entry deleted by hand", async () => {
      const { kernel, pass, events } = await converged();
      kernel.removeByHand("fdb", (f) => f.mac === "02:00:00:00:00:12");
      assert.ok((await pass.run("kernel")).converged);
      assertVxlanProgrammed(kernel);
      assert.deepEqual(entries(events, "repaired"), ["fdb 02:00:00:00:00:12"]);
    });

    it("the device deleted: made again, with everything on it", async () => {
      const { kernel, pass, events } = await converged();
      await kernel.deleteLink(device(kernel)!.index);
      assert.deepEqual(routes(kernel), [], "the kernel drops the device's routes with it");
      assert.ok((await pass.run("kernel")).converged);
      assertVxlanProgrammed(kernel);
      assert.ok(
        events.some(
          (e) => e.type === "device" && e.action === "created" && e.reason === "device was deleted" && e.repair,
        ),
      );
      assert.deepEqual(entries(events, "repaired"), ["route 172.30.2.0/24", "route 172.30.3.0/24"]);
    });

    it("the device changed in place (MTU, down): set back on the same device, its entries untouched", async () => {
      const { kernel, pass, events } = await converged();
      const link = device(kernel)!;
      kernel.edit({ ...link, mtu: 1500, up: false });
      assert.ok((await pass.run("kernel")).converged);
      assert.equal(device(kernel)?.index, link.index);
      assertVxlanProgrammed(kernel);
      assert.deepEqual(kernel.requests, [`setLink #${link.index} {"mtu":1450,"up":true}`]);
      assert.ok(
        events.some((e) => e.type === "device" && e.action === "updated" && e.reason === "mtu 1500 → 1450, down → up"),
      );
    });

    it("the device replaced by a link of another kind: the pass fails naming it, and deletes nothing", async () => {
      const { kernel, pass } = await converged();
      await kernel.deleteLink(device(kernel)!.index);
      kernel.requests.length = 0;
      kernel.addForeignLink("flannel.1", "dummy");
      const outcome = await pass.run("kernel");
      assert.equal(outcome.converged, false);
      assert.ok(outcome.error instanceof ForeignLinkError);
      assert.match(pass.problem ?? "", /a dummy link named flannel\.1 exists, and it is not a vxlan device/);
      assert.deepEqual(kernel.requests, []);
      assert.equal(device(kernel)?.kind, "dummy");
    });
  });

  describe("peers added, removed and changed (the incremental pass after a converged one)", () => {
    it("programs an added peer, removes a gone one, and follows a changed public IP", async () => {
      const { kernel, pass, peers, events } = setup();
      assert.ok((await pass.run("start")).converged);
      events.length = 0;
      const four = peer(4);
      peers.set(`${four.subnet.ip}`, four);
      peers.delete(`${peer(2).subnet.ip}`);
      const three = peer(3);
      peers.set(`${three.subnet.ip}`, { ...three, attrs: { ...three.attrs, publicIp: "10.42.0.33" } });
      assert.ok((await pass.run("peers")).converged);
      assert.deepEqual(routes(kernel), ["172.30.3.0/24 via 172.30.3.0 onlink", "172.30.4.0/24 via 172.30.4.0 onlink"]);
      assert.deepEqual(kernel.fdb.map((f) => `${f.mac} → ${f.dst ?? ""}`).sort(), [
        "02:00:00:00:00:13 → 10.42.0.33",
        "02:00:00:00:00:14 → 10.42.0.14",
      ]);
      assert.deepEqual(kernel.neighbors.map((n) => n.ip).sort(), ["172.30.3.0", "172.30.4.0"]);
      assert.deepEqual(entries(events, "removed"), [
        "fdb 02:00:00:00:00:12",
        "neighbor 172.30.2.0",
        "route 172.30.2.0/24",
      ]);
      assert.deepEqual(entries(events, "programmed"), [
        "fdb 02:00:00:00:00:14",
        "neighbor 172.30.4.0",
        "route 172.30.4.0/24",
      ]);
      assert.deepEqual(
        entries(events, "repaired"),
        ["fdb 02:00:00:00:00:13"],
        "the changed peer's FDB entry was replaced",
      );
      assert.deepEqual([...pass.programmedPeers()].sort(), ["172.30.3.0/24", "172.30.4.0/24"]);
    });

    it("a peer of another backend or VNI is skipped with the reason, once", async () => {
      const { kernel, pass, peers, events } = setup();
      const odd = { ...peer(5), attrs: { ...peer(5).attrs, vni: 7 } };
      peers.set("odd", odd);
      peers.set("gw", peer(6, "10.42.0.16", "host-gw"));
      assert.ok((await pass.run("start")).converged);
      assert.ok((await pass.run("periodic")).converged);
      assert.deepEqual(routes(kernel).length, 2);
      assert.deepEqual([...pass.skippedPeers().values()].sort(), [
        "peer runs backend host-gw, this network uses vxlan",
        "peer uses VNI 7, this network uses 1",
      ]);
      assert.equal(events.filter((e) => e.type === "peer-skipped").length, 2, "reported once, not every pass");
    });
  });

  describe("an errno in the middle of a pass", () => {
    it("the other entries are programmed, the pass reports the failure, and the next pass repairs it", async () => {
      const { kernel, pass, events } = setup();
      kernel.failNext("replaceNeighbor", "ENOBUFS");
      const first = await pass.run("start");
      assert.equal(first.converged, false);
      assert.match(pass.problem ?? "", /ENOBUFS|No buffer space/);
      assert.ok(events.some((e) => e.type === "error" && e.entry?.kind === "neighbor"));
      assert.equal(kernel.neighbors.length, 1, "one neighbour failed, the other is in");
      assert.equal(routes(kernel).length, 2);
      assert.equal(pass.converged, false);
      const second = await pass.run("retry");
      assert.deepEqual(second, { converged: true, error: undefined });
      assertVxlanProgrammed(kernel);
      assert.equal(pass.problem, undefined);
    });

    it("a failing dump (listRoutes) fails the pass without touching anything; the next one converges", async () => {
      const { kernel, pass } = setup();
      assert.ok((await pass.run("start")).converged);
      kernel.requests.length = 0;
      kernel.failNext("listRoutes", "EBUSY");
      assert.equal((await pass.run("periodic")).converged, false);
      assert.deepEqual(kernel.requests, []);
      assert.ok((await pass.run("retry")).converged);
      assertVxlanProgrammed(kernel);
    });
  });

  describe("restart: adoption of what a previous run left", () => {
    it("a new pass over a converged kernel changes nothing at all", async () => {
      const s = setup();
      assert.ok((await s.pass.run("start")).converged);
      s.kernel.requests.length = 0;
      s.events.length = 0;
      const restarted = s.restart();
      assert.deepEqual(await restarted.run("start"), { converged: true, error: undefined });
      assert.deepEqual(s.kernel.requests, [], "nothing deleted, re-created or re-added");
      assert.deepEqual(
        s.events.filter((e) => e.type !== "pass"),
        [],
      );
      assert.deepEqual([...restarted.programmedPeers()].sort(), ["172.30.2.0/24", "172.30.3.0/24"]);
    });

    it("removes only what is ours and no peer needs; a foreign route and a foreign link are untouched", async () => {
      const s = setup();
      assert.ok((await s.pass.run("start")).converged);
      s.peers.delete(`${peer(3).subnet.ip}`);
      await s.kernel.replaceRoute({ dst: "192.168.7.0", prefixLen: 24, gateway: "10.42.0.1", oif: 2, protocol: 4 });
      s.kernel.addForeignLink("cni0", "bridge");
      s.kernel.requests.length = 0;
      s.events.length = 0;
      assert.ok((await s.restart().run("start")).converged);
      assert.deepEqual(entries(s.events, "stale-removed"), [
        "fdb 02:00:00:00:00:13",
        "neighbor 172.30.3.0",
        "route 172.30.3.0/24",
      ]);
      assert.deepEqual(s.kernel.requests.map((r) => r.split(" ")[0]).sort(), [
        "deleteFdb",
        "deleteNeighbor",
        "deleteRoute",
      ]);
      assert.ok(
        s.kernel.routes.some((r) => r.dst === "192.168.7.0" && r.protocol === 4),
        "a proto static route stays",
      );
      assert.equal(s.kernel.byName("cni0")?.kind, "bridge");
      assertVxlanProgrammed(s.kernel, [2]);
    });
  });
});
