// The reconciler over a fake kernel: drift on the VXLAN device reported by kernel events is repaired at once and in
// place where the kernel allows it, and a link of another kind with the device's name is never touched.
import assert from "node:assert/strict";
import { systemClock } from "#lib/clock.js";
import { parseCidr } from "#lib/ipv4.js";
import { backendFor } from "../src/dataplane/backends/registry.js";
import { TRELLIS_ROUTE_PROTOCOL } from "../src/dataplane/marks.js";
import { ForeignLinkError, Reconciler, type DataplaneEvent } from "../src/dataplane/reconciler.js";
import type { Peer } from "../src/lease/peers.js";
import { fakeNode, type FakeKernel } from "../../lib/test/support/fake-kernel.js";
import { FakeClock } from "./support/fake-clock.js";

const peer: Peer = {
  subnet: parseCidr("172.30.2.0/24")!,
  attrs: { publicIp: "10.42.0.12", backendType: "vxlan", vni: 1, vtepMac: "02:00:00:00:00:12" },
  reserved: false,
};

function setup(): {
  kernel: FakeKernel;
  reconciler: Reconciler;
  events: DataplaneEvent[];
  controller: AbortController;
  running: Promise<void>;
} {
  const kernel = fakeNode({ name: "eth0", mtu: 1500, address: "10.42.0.11", prefixLen: 24 });
  const reconciler = new Reconciler({
    kernel,
    backend: backendFor({ type: "vxlan", vni: 1, port: 8472, directRouting: false }),
    clock: systemClock,
    deviceName: "flannel.1",
    underlayName: "eth0",
    localIp: "10.42.0.11",
    own: () => ({ subnet: parseCidr("172.30.1.0/24")!, vtepMac: "02:00:00:00:00:11" }),
    peers: () => [peer],
    // Far away: whatever is repaired below is repaired because of a kernel event.
    resyncIntervalMs: 600_000,
  });
  const events: DataplaneEvent[] = [];
  reconciler.events.on((e) => events.push(e));
  const controller = new AbortController();
  return { kernel, reconciler, events, controller, running: reconciler.run(controller.signal) };
}

async function until(what: string, predicate: () => boolean, timeoutMs = 2000): Promise<void> {
  const started = Date.now();
  while (!predicate()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("reconciler (fake kernel)", () => {
  it("learning switched on by hand: a kernel event repairs it in place, same device, no pass lost", async () => {
    const { kernel, reconciler, events, controller, running } = setup();
    assert.ok((await reconciler.pass("start")).converged);
    await new Promise((resolve) => setTimeout(resolve, 20)); // our own creation events settle
    const device = kernel.byName("flannel.1")!;
    kernel.requests.length = 0;
    kernel.edit({ ...device, vxlan: { ...device.vxlan!, learning: true } });
    await until("learning off again", () => kernel.byName("flannel.1")?.vxlan?.learning === false);
    assert.equal(
      kernel.byName("flannel.1")?.index,
      device.index,
      "the same device: its routes, ARP and FDB entries stay",
    );
    assert.deepEqual(kernel.requests, [`setLink #${device.index} {"vxlan":{"learning":false}}`]);
    assert.ok(
      events.some((e) => e.type === "device" && e.action === "updated" && e.reason === "learning on → off" && e.repair),
    );
    assert.equal(kernel.fdb.length, 1);
    controller.abort();
    await running;
  });

  it("a kernel that cannot change an attribute in place gets the device re-created", async () => {
    const { kernel, reconciler, events, controller, running } = setup();
    await reconciler.pass("start");
    await new Promise((resolve) => setTimeout(resolve, 20));
    const device = kernel.byName("flannel.1")!;
    kernel.vxlanChangeErrno = "ENOTSUP";
    kernel.edit({ ...device, vxlan: { ...device.vxlan!, learning: true } });
    await until("re-created", () => events.some((e) => e.type === "device" && e.action === "recreated"));
    await until("converged", () => reconciler.converged && kernel.fdb.length === 1);
    assert.equal(kernel.byName("flannel.1")?.vxlan?.learning, false);
    controller.abort();
    await running;
  });

  it("a link of another kind with the device's name at start: the pass fails naming it, the link is left alone", async () => {
    const { kernel, reconciler, controller, running } = setup();
    const foreign = kernel.addForeignLink("flannel.1", "bridge");
    const outcome = await reconciler.pass("start");
    assert.equal(outcome.converged, false);
    assert.ok(outcome.error instanceof ForeignLinkError);
    assert.match(reconciler.problem ?? "", /^a bridge link named flannel\.1 exists, and it is not a vxlan device/);
    assert.deepEqual(
      kernel.requests.filter((r) => r.startsWith("deleteLink") || r.startsWith("createVxlan")),
      [],
    );
    assert.deepEqual(kernel.byName("flannel.1"), foreign);
    controller.abort();
    await running;
  });

  it("our device replaced by another kind of link while running: not converged, reason names it, never deleted", async () => {
    const { kernel, reconciler, controller, running } = setup();
    await reconciler.pass("start");
    const device = kernel.byName("flannel.1")!;
    await kernel.deleteLink(device.index);
    kernel.addForeignLink("flannel.1", undefined);
    await until("not converged", () => !reconciler.converged && reconciler.problem !== undefined);
    assert.match(reconciler.problem ?? "", /a physical link named flannel\.1 exists/);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(kernel.byName("flannel.1")?.kind, undefined, "still the foreign link");
    assert.equal(kernel.requests.filter((r) => r.startsWith("deleteLink")).length, 1, "only our own delete above");
    controller.abort();
    await running;
  });

  it("on a fake clock: a kernel event's repair waits one debounce, and the periodic pass finds what no event told", async () => {
    const kernel = fakeNode({ name: "eth0", mtu: 1500, address: "10.42.0.11", prefixLen: 24 });
    const clock = new FakeClock();
    const reconciler = new Reconciler({
      kernel,
      clock,
      backend: backendFor({ type: "vxlan", vni: 1, port: 8472, directRouting: false }),
      deviceName: "flannel.1",
      underlayName: "eth0",
      localIp: "10.42.0.11",
      own: () => ({ subnet: parseCidr("172.30.1.0/24")!, vtepMac: "02:00:00:00:00:11" }),
      peers: () => [peer],
      resyncIntervalMs: 10_000,
    });
    const controller = new AbortController();
    const running = reconciler.run(controller.signal);
    assert.ok((await reconciler.pass("start")).converged);
    await clock.advance(10); // our own creation events: not drift
    kernel.requests.length = 0;
    kernel.removeByHand("route", (r) => r.dst === "172.30.2.0");
    await clock.advance(4);
    assert.equal(kernel.routes.length, 0, "not before the debounce");
    await clock.advance(1);
    assert.deepEqual(
      kernel.routes.map((r) => r.dst),
      ["172.30.2.0"],
    );
    assert.deepEqual(kernel.requests, ["replaceRoute 172.30.2.0/24"]);
    // A neighbour changed without an event (a lost notification): only the periodic pass sees it.
    const device = kernel.byName("flannel.1")!;
    kernel.world.ns("host").neighbors = kernel.neighbors.map((n) => ({ ...n, mac: "02:00:00:00:00:99" }));
    await clock.advance(9_000);
    assert.equal(kernel.neighbors[0]?.mac, "02:00:00:00:00:99");
    await clock.advance(1_010);
    assert.deepEqual(
      kernel.neighbors.map((n) => [n.index, n.mac]),
      [[device.index, "02:00:00:00:00:12"]],
    );
    controller.abort();
    await running;
  });

  it("IPv6 addresses, routes and neighbours coming and going are not drift (no pass); IPv4 ones still are", async () => {
    const kernel = fakeNode({ name: "eth0", mtu: 1500, address: "10.42.0.11", prefixLen: 24 });
    const clock = new FakeClock();
    const reconciler = new Reconciler({
      kernel,
      clock,
      backend: backendFor({ type: "vxlan", vni: 1, port: 8472, directRouting: false }),
      deviceName: "flannel.1",
      underlayName: "eth0",
      localIp: "10.42.0.11",
      own: () => ({ subnet: parseCidr("172.30.1.0/24")!, vtepMac: "02:00:00:00:00:11" }),
      peers: () => [peer],
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
    const device = kernel.byName("flannel.1")!;
    // What the kernel does by itself as links come and go: link-local addresses, NDP entries, IPv6 routes (one
    // with our protocol number too: we own no IPv6 route, so its loss is nothing to repair).
    for (const index of [device.index, 2]) {
      const address = { index, address: "fe80::1", prefixLen: 64 };
      await kernel.addAddress(address);
      await kernel.deleteAddress(address);
    }
    await kernel.replaceNeighbor({ index: device.index, ip: "fe80::2", mac: "02:00:00:00:00:12", permanent: false });
    await kernel.deleteNeighbor({ index: device.index, ip: "fe80::2" });
    const route = { dst: "fd30::", prefixLen: 64, oif: device.index, protocol: TRELLIS_ROUTE_PROTOCOL };
    await kernel.replaceRoute(route);
    await kernel.deleteRoute(route);
    await clock.advance(20);
    assert.deepEqual(kernelPasses, []);

    kernel.removeByHand("route", (r) => r.dst === "172.30.2.0");
    await clock.advance(5);
    assert.equal(kernelPasses.length, 1, "an IPv4 route of ours deleted by hand is still repaired");
    assert.deepEqual(
      kernel.routes.map((r) => r.dst),
      ["172.30.2.0"],
    );
    controller.abort();
    await running;
  });
});
