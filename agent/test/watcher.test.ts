import assert from "node:assert/strict";
import { formatCidr, parseCidr, type Cidr } from "#lib/ipv4.js";
import { parseCidr6, type Cidr6 } from "#lib/ipv6.js";
import { validateNetworkConfig } from "../src/config/network-config.js";
import type { NetworkConfig } from "../src/config/network-config.js";
import type { LeaseShape } from "../src/lease/peer-validation.js";
import { PeerWatcher, type WatcherEvent } from "../src/lease/watcher.js";
import { FakeClock, settle } from "./support/fake-clock.js";
import { MemoryRegistry } from "./support/memory-registry.js";

const cidr = (text: string): Cidr => parseCidr(text)!;
// Each node's VTEP MAC is its own (two leases claiming one MAC are a conflict): by default derived from the IP.
const macOf = (ip: string): string => `02:00:00:00:00:${Number(ip.split(".")[3]).toString(16).padStart(2, "0")}`;
const value = (ip: string, mac = macOf(ip)): string =>
  `{"PublicIP":"${ip}","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`;

const shapes = [{ network: cidr("172.30.0.0/16"), subnetLen: 24 }];

function setup(
  own: Cidr | undefined = cidr("172.30.1.0/24"),
  resetGraceMs = 30_000,
): {
  clock: FakeClock;
  registry: MemoryRegistry;
  watcher: PeerWatcher;
  events: WatcherEvent[];
  controller: AbortController;
} {
  const clock = new FakeClock();
  const registry = new MemoryRegistry(clock);
  const watcher = new PeerWatcher({
    registry,
    clock,
    publicIp: "10.0.0.1",
    ownLease: () => ({ subnet: own }),
    ownVtepMac: "02:00:00:00:00:f1",
    shapes,
    resetGraceMs,
    random: () => 0.5,
  });
  const events: WatcherEvent[] = [];
  watcher.events.on((e) => events.push(e));
  return { clock, registry, watcher, events, controller: new AbortController() };
}

const peerEvents = (events: WatcherEvent[]): string[] =>
  events.flatMap((e) =>
    e.type === "added" || e.type === "removed" || e.type === "changed"
      ? [`${e.type} ${formatCidr(e.peer.subnet)}`]
      : [],
  );

describe("peer watcher (fake registry)", () => {
  it("lists, then follows puts and deletes; its own lease is never a peer", async () => {
    const { registry, watcher, events, controller } = setup();
    registry.putRaw(cidr("172.30.1.0/24"), value("10.0.0.1"), 60);
    registry.putRaw(cidr("172.30.2.0/24"), value("10.0.0.2"), 60);
    const running = watcher.run(controller.signal);
    await settle();
    assert.ok(watcher.live);
    registry.putRaw(cidr("172.30.3.0/24"), value("10.0.0.3"), 60);
    registry.putRaw(cidr("172.30.3.0/24"), value("10.0.0.3", "02:00:00:00:00:33"), 60);
    registry.putRaw(cidr("172.30.9.0/24"), value("10.0.0.1"), 60); // names our IP: ours, not a peer
    registry.remove("172.30.2.0-24");
    await settle();
    assert.deepEqual(peerEvents(events), [
      "added 172.30.2.0/24",
      "added 172.30.3.0/24",
      "changed 172.30.3.0/24",
      "removed 172.30.2.0/24",
    ]);
    assert.deepEqual([...watcher.peers().keys()], ["172.30.3.0/24"]);
    controller.abort();
    await running;
  });

  it("takes a flannel dual-stack node as a peer: its IPv4 subnet, with its IPv6 half and attributes kept", async () => {
    const { registry, watcher, events, controller } = setup();
    const v6 = parseCidr6("fd30:0:0:4::/64")!;
    const dual =
      '{"PublicIP":"10.0.0.4","PublicIPv6":"fd00::4","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:04"},"BackendV6Data":{"VNI":1,"VtepMAC":"02:00:00:00:06:04"}}';
    registry.putRaw(cidr("172.30.4.0/24"), dual, 60, v6);
    const running = watcher.run(controller.signal);
    await settle();
    const peer = watcher.peers().get("172.30.4.0/24&fd30:0:0:4::/64") ?? assert.fail("the dual-stack lease is no peer");
    assert.deepEqual(peer.subnet, cidr("172.30.4.0/24"));
    assert.deepEqual(peer.subnet6, v6);
    assert.equal(peer.attrs.publicIpv6, "fd00::4");
    assert.deepEqual(peer.attrs.v6, { vni: 1, vtepMac: "02:00:00:00:06:04" });
    registry.remove("172.30.4.0-24&fd30:0:0:4::-64");
    await settle();
    assert.deepEqual(peerEvents(events), ["added 172.30.4.0/24", "removed 172.30.4.0/24"]);
    assert.equal(watcher.peers().size, 0);
    controller.abort();
    await running;
  });

  it("skips an invalid lease with one warning and keeps serving the rest", async () => {
    const { registry, watcher, events, controller, clock } = setup();
    registry.putRaw(cidr("172.30.4.0/24"), "{not json");
    registry.putRaw(cidr("172.30.5.0/24"), '{"PublicIP":"10.0.0.5","BackendData":{"VtepMAC":"nope"}}');
    registry.putRaw(cidr("172.30.6.0/24"), value("10.0.0.6"));
    const running = watcher.run(controller.signal);
    await settle();
    registry.compact(); // a resync must not repeat the warnings
    await clock.advance(1000);
    const invalid = events.flatMap((e) => (e.type === "invalid" ? [`${formatCidr(e.subnet)}: ${e.reason}`] : []));
    assert.equal(invalid.length, 2);
    assert.match(String(invalid[0]), /172\.30\.4\.0\/24: value is not valid JSON/);
    assert.match(String(invalid[1]), /VtepMAC "nope"/);
    assert.deepEqual([...watcher.peers().keys()], ["172.30.6.0/24"]);
    // Fixing the value turns it into a peer.
    registry.putRaw(cidr("172.30.4.0/24"), value("10.0.0.4"));
    await settle();
    assert.ok(watcher.peers().has("172.30.4.0/24"));
    controller.abort();
    await running;
  });

  it("after compaction re-lists and emits exactly the difference: nothing missed, nothing stale", async () => {
    const { registry, watcher, events, controller, clock } = setup();
    registry.putRaw(cidr("172.30.2.0/24"), value("10.0.0.2"));
    registry.putRaw(cidr("172.30.3.0/24"), value("10.0.0.3"));
    const running = watcher.run(controller.signal);
    await settle();
    registry.failing = true;
    registry.disconnect(); // watch drops; changes happen while we cannot see them
    registry.failing = false;
    const silent = registry.watchLeases.bind(registry);
    registry.watchLeases = (from, sink) => {
      registry.watchLeases = silent;
      return silent(from, sink);
    };
    // Mutate the store behind the watcher's back, then compact away the history.
    const before = events.length;
    registry.entries.delete("172.30.2.0-24");
    registry.putRaw(cidr("172.30.7.0/24"), value("10.0.0.7"));
    registry.compact();
    await clock.advance(10_000);
    const after = peerEvents(events.slice(before));
    assert.deepEqual(after.sort(), ["added 172.30.7.0/24", "removed 172.30.2.0/24"]);
    assert.deepEqual([...watcher.peers().keys()].sort(), ["172.30.3.0/24", "172.30.7.0/24"]);
    assert.ok(events.some((e) => e.type === "broken" && e.reason === "disconnected"));
    assert.ok(events.some((e) => e.type === "synced" && !e.initial));
    controller.abort();
    await running;
  });

  it("backs off with growing, jittered delays while etcd is unreachable, then recovers", async () => {
    const { registry, watcher, events, controller, clock } = setup();
    registry.failing = true;
    const running = watcher.run(controller.signal);
    await clock.advance(20_000);
    const delays = events.flatMap((e) => (e.type === "broken" ? [e.retryInMs] : []));
    assert.ok(delays.length >= 5, `expected several retries, got ${delays.length}`);
    assert.deepEqual(delays.slice(0, 4), [100, 200, 400, 800]);
    assert.ok(delays.every((d) => d <= 5000));
    registry.failing = false;
    registry.putRaw(cidr("172.30.2.0/24"), value("10.0.0.2"));
    await clock.advance(6_000);
    assert.ok(watcher.live);
    assert.ok(watcher.peers().has("172.30.2.0/24"));
    controller.abort();
    await running;
  });

  it("reports every write of its own key (garbage, another node's value) and its deletion; never a peer", async () => {
    const { registry, watcher, events, controller } = setup();
    registry.putRaw(cidr("172.30.1.0/24"), value("10.0.0.1"));
    const running = watcher.run(controller.signal);
    await settle();
    registry.overwrite(cidr("172.30.1.0/24"), "garbage");
    registry.putRaw(cidr("172.30.1.0/24"), value("10.0.0.66"));
    registry.remove("172.30.1.0-24");
    await settle();
    const own = events.flatMap((e) =>
      e.type === "own-changed"
        ? [e.lease.attrs.ok ? e.lease.attrs.value.publicIp : "garbage"]
        : e.type === "own-removed"
          ? ["removed"]
          : [],
    );
    assert.deepEqual(own, ["10.0.0.1", "garbage", "10.0.0.66", "removed"]);
    assert.equal(watcher.peers().size, 0);
    assert.ok(!events.some((e) => e.type === "invalid"), "our own key is the keeper's business, not a rejected peer");
    controller.abort();
    await running;
  });

  it("skips forged and malformed leases with a reason each, and the others still converge", async () => {
    const { registry, watcher, events, controller } = setup();
    registry.putRaw(cidr("172.30.98.0/24"), value("10.0.0.98", "02:00:00:00:00:98"), 60);
    const running = watcher.run(controller.signal);
    await settle();
    registry.putRaw(cidr("192.0.2.0/24"), value("10.0.0.50", "02:00:00:00:00:50"));
    registry.putRaw(cidr("172.30.0.0/16"), value("10.0.0.51", "02:00:00:00:00:51"));
    registry.putRaw(cidr("172.30.98.0/25"), value("10.0.0.52", "02:00:00:00:00:52"));
    registry.putRaw(cidr("0.0.0.0/0"), value("10.0.0.53", "02:00:00:00:00:53"));
    registry.putRaw(cidr("172.30.7.0/24"), value("10.0.0.54", "02:00:00:00:00:98")); // another node's VTEP MAC
    registry.putRaw(cidr("172.30.8.0/24"), value("10.0.0.55", "02:00:00:00:00:f1")); // ours
    registry.putRaw(cidr("172.30.9.0/24"), value("10.0.0.9", "02:00:00:00:00:09"));
    await settle();
    assert.deepEqual([...watcher.peers().keys()].sort(), ["172.30.9.0/24", "172.30.98.0/24"]);
    const reasons = new Map(
      [...watcher.rejected().values()].map((r) => [formatCidr(r.subnet), `${r.kind}: ${r.reason}`]),
    );
    assert.match(
      reasons.get("192.0.2.0/24") ?? "",
      /^outside-network: 192\.0\.2\.0\/24 is not inside Network 172\.30\.0\.0\/16 with SubnetLen 24$/,
    );
    assert.match(reasons.get("0.0.0.0/0") ?? "", /^outside-network: /);
    assert.match(
      reasons.get("172.30.0.0/16") ?? "",
      /^wrong-length: 172\.30\.0\.0\/16 is a \/16; leases of Network 172\.30\.0\.0\/16 with SubnetLen 24 are \/24$/,
    );
    assert.match(reasons.get("172.30.98.0/25") ?? "", /^wrong-length: /);
    assert.match(
      reasons.get("172.30.7.0/24") ?? "",
      /^duplicate-vtep-mac: VtepMAC 02:00:00:00:00:98 is already used by 172\.30\.98\.0\/24 \(10\.0\.0\.98\)/,
    );
    assert.match(reasons.get("172.30.8.0/24") ?? "", /^duplicate-vtep-mac: .* by this node/);
    assert.equal(events.filter((e) => e.type === "invalid").length, 6);
    // The younger of two leases claiming one MAC goes when the older goes: then it is a peer.
    registry.remove("172.30.98.0-24");
    await settle();
    assert.ok(watcher.peers().has("172.30.7.0/24"));
    controller.abort();
    await running;
  });

  it("while two networks are accepted (a config change), the older of two overlapping leases wins", async () => {
    const { registry, watcher, controller } = setup();
    registry.putRaw(cidr("172.30.4.0/24"), value("10.0.0.4", "02:00:00:00:00:04"));
    const running = watcher.run(controller.signal);
    await settle();
    watcher.setShapes([...shapes, { network: cidr("172.30.0.0/16"), subnetLen: 25 }]);
    registry.putRaw(cidr("172.30.4.128/25"), value("10.0.0.5", "02:00:00:00:00:05"));
    registry.putRaw(cidr("172.30.1.0/25"), value("10.0.0.6", "02:00:00:00:00:06")); // inside our own /24
    registry.putRaw(cidr("172.30.5.0/25"), value("10.0.0.7", "02:00:00:00:00:07"));
    await settle();
    assert.deepEqual([...watcher.peers().keys()].sort(), ["172.30.4.0/24", "172.30.5.0/25"]);
    assert.match(
      watcher.rejected().get("172.30.4.128/25")?.reason ?? "",
      /overlaps 172\.30\.4\.0\/24 of 172\.30\.4\.0\/24 \(10\.0\.0\.4\), which was there first/,
    );
    assert.match(watcher.rejected().get("172.30.1.0/25")?.reason ?? "", /overlaps 172\.30\.1\.0\/24 of this node/);
    controller.abort();
    await running;
  });

  for (const [how, reset] of [
    [
      "etcd restored empty (revision backwards)",
      (r: MemoryRegistry) => {
        r.wipe();
      },
    ],
    [
      "a new etcd cluster (cluster ID changed)",
      (r: MemoryRegistry) => {
        r.wipe({ clusterId: "2222" });
      },
    ],
  ] as const) {
    it(`${how}: keeps every peer through the grace period, removes only what stays absent`, async () => {
      const { registry, watcher, events, controller, clock } = setup(cidr("172.30.1.0/24"), 30_000);
      for (const n of [1, 2, 3, 4])
        registry.putRaw(cidr(`172.30.${n}.0/24`), value(`10.0.0.${n}`, `02:00:00:00:00:0${n}`), 60);
      for (let n = 0; n < 20; n++) registry.putRaw(cidr("172.30.3.0/24"), value("10.0.0.3", "02:00:00:00:00:03"), 60); // history
      const running = watcher.run(controller.signal);
      await settle();
      assert.equal(watcher.peers().size, 3);
      reset(registry);
      registry.putRaw(cidr("172.30.2.0/24"), value("10.0.0.2", "02:00:00:00:00:02"), 60); // one node is back already
      await clock.advance(200);
      assert.ok(
        events.some((e) => e.type === "store-reset"),
        "the reset is recognised",
      );
      assert.ok(!events.some((e) => e.type === "removed"), "no peer removed during the grace period");
      assert.equal(watcher.peers().size, 3);
      assert.ok(
        events.some((e) => e.type === "own-removed"),
        "the keeper is told to register again",
      );
      registry.putRaw(cidr("172.30.3.0/24"), value("10.0.0.3", "02:00:00:00:00:03"), 60);
      await clock.advance(30_000);
      assert.deepEqual(
        events.flatMap((e) => (e.type === "removed" ? [formatCidr(e.peer.subnet)] : [])),
        ["172.30.4.0/24"],
      );
      assert.deepEqual([...watcher.peers().keys()].sort(), ["172.30.2.0/24", "172.30.3.0/24"]);
      assert.ok(events.some((e) => e.type === "store-reset-over" && e.removed === 1));
      controller.abort();
      await running;
    });
  }

  it("every lease deleted at once (one batch, ours included) is a reset too; a single peer leaving is not", async () => {
    const { registry, watcher, events, controller, clock } = setup(cidr("172.30.1.0/24"), 10_000);
    for (const n of [1, 2, 3])
      registry.putRaw(cidr(`172.30.${n}.0/24`), value(`10.0.0.${n}`, `02:00:00:00:00:0${n}`), 60);
    const running = watcher.run(controller.signal);
    await settle();
    registry.remove("172.30.3.0-24");
    await settle();
    assert.deepEqual(
      events.flatMap((e) => (e.type === "removed" ? [formatCidr(e.peer.subnet)] : [])),
      ["172.30.3.0/24"],
    );
    registry.putRaw(cidr("172.30.3.0/24"), value("10.0.0.3", "02:00:00:00:00:03"), 60);
    await settle();
    const before = events.length;
    registry.deleteAll();
    await settle();
    assert.ok(
      events.slice(before).some((e) => e.type === "store-reset" && e.reason === "every lease vanished at once"),
    );
    assert.equal(watcher.peers().size, 2);
    await clock.advance(10_000);
    assert.equal(watcher.peers().size, 0);
    controller.abort();
    await running;
  });
});

describe("peer watcher: IPv6 halves of keys (fake registry)", () => {
  const v6 = (text: string): Cidr6 => parseCidr6(text)!;
  const dualValue = (n: number): string =>
    `{"PublicIP":"10.0.0.${n}","PublicIPv6":"fd00::${n}","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:0${n}"},"BackendV6Data":{"VNI":1,"VtepMAC":"02:00:00:00:06:0${n}"}}`;
  const leaseShape = (config: NetworkConfig): LeaseShape => ({
    network: config.network,
    subnetLen: config.subnetLen,
    enableIPv4: config.enableIPv4,
    ...(config.ipv6 === undefined ? {} : { ipv6: { network: config.ipv6.network, subnetLen: config.ipv6.subnetLen } }),
  });
  interface Started {
    registry: MemoryRegistry;
    watcher: PeerWatcher;
    events: WatcherEvent[];
    run: () => void;
    stop: () => Promise<void>;
  }
  function start(shape: LeaseShape, own: { subnet: Cidr; subnet6?: Cidr6 }): Started {
    const clock = new FakeClock();
    const registry = new MemoryRegistry(clock);
    const watcher = new PeerWatcher({
      registry,
      clock,
      publicIp: "10.0.0.1",
      ownLease: () => own,
      shapes: [shape],
      random: () => 0.5,
    });
    const events: WatcherEvent[] = [];
    watcher.events.on((e) => events.push(e));
    const controller = new AbortController();
    let running: Promise<void> = Promise.resolve();
    return {
      registry,
      watcher,
      events,
      run: () => {
        running = watcher.run(controller.signal);
      },
      stop: async () => {
        controller.abort();
        await running;
      },
    };
  }
  const invalid = (events: WatcherEvent[]): string[] => events.flatMap((e) => (e.type === "invalid" ? [e.reason] : []));

  it("dual-stack: an IPv6 half outside IPv6Network, of the wrong length or overlapping an older one is skipped with a reason", async () => {
    const dual = validateNetworkConfig({ Network: "172.30.0.0/16", EnableIPv6: true, IPv6Network: "fd30::/56" });
    const ctx = start(leaseShape(dual), { subnet: cidr("172.30.1.0/24"), subnet6: v6("fd30:0:0:1::/64") });
    ctx.registry.putRaw(cidr("172.30.2.0/24"), dualValue(2), 60, v6("fd30:0:0:2::/64"));
    ctx.registry.putRaw(cidr("172.30.3.0/24"), dualValue(3), 60, v6("fd99:0:0:3::/64"));
    ctx.registry.putRaw(cidr("172.30.4.0/24"), dualValue(4), 60, v6("fd30:0:0:4::/80"));
    ctx.registry.putRaw(cidr("172.30.5.0/24"), dualValue(5), 60, v6("fd30:0:0:2::/64"));
    ctx.registry.putRaw(cidr("172.30.6.0/24"), dualValue(6), 60, v6("fd30:0:0:1::/64"));
    ctx.registry.putRaw(cidr("172.30.7.0/24"), value("10.0.0.7"), 60); // an IPv4-only node: a peer, IPv4 only
    ctx.run();
    await settle();
    assert.deepEqual([...ctx.watcher.peers().keys()].sort(), ["172.30.2.0/24&fd30:0:0:2::/64", "172.30.7.0/24"]);
    assert.deepEqual(invalid(ctx.events).sort(), [
      "fd30:0:0:1::/64 overlaps fd30:0:0:1::/64 of this node, which was there first",
      "fd30:0:0:2::/64 overlaps fd30:0:0:2::/64 of 172.30.2.0/24 (10.0.0.2), which was there first",
      "fd30:0:0:4::/80 is a /80; IPv6 leases are /64",
      "fd99:0:0:3::/64 is not inside IPv6Network fd30::/56 with IPv6SubnetLen 64",
    ]);
    await ctx.stop();
  });

  it("IPv6-only: keys 0.0.0.0-0&<subnet6> are peers, an IPv4 key is not, ours is told by its IPv6 half", async () => {
    const only = validateNetworkConfig({ EnableIPv4: false, EnableIPv6: true, IPv6Network: "fd30::/56" });
    const none = cidr("0.0.0.0/0");
    const ctx = start(leaseShape(only), { subnet: none, subnet6: v6("fd30:0:0:1::/64") });
    ctx.registry.putRaw(none, '{"PublicIP":"10.0.0.1"}', 60, v6("fd30:0:0:1::/64")); // our own key
    ctx.registry.putRaw(none, dualValue(2), 60, v6("fd30:0:0:2::/64"));
    ctx.registry.putRaw(none, dualValue(3), 60, v6("fd30:0:0:3::/64"));
    ctx.registry.putRaw(cidr("172.30.4.0/24"), dualValue(4), 60);
    ctx.registry.putRaw(none, dualValue(5), 60);
    ctx.run();
    await settle();
    assert.deepEqual([...ctx.watcher.peers().keys()].sort(), [
      "0.0.0.0/0&fd30:0:0:2::/64",
      "0.0.0.0/0&fd30:0:0:3::/64",
    ]);
    assert.deepEqual(invalid(ctx.events).sort(), [
      "172.30.4.0/24: an IPv6-only network's keys have no IPv4 subnet (0.0.0.0-0)",
      "the key names no IPv6 subnet",
    ]);
    await ctx.stop();
  });
});
