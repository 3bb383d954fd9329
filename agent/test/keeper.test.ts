import assert from "node:assert/strict";
import { formatCidr, parseCidr, type Cidr } from "#lib/ipv4.js";
import { formatCidr6, parseCidr6 } from "#lib/ipv6.js";
import { validateNetworkConfig } from "../src/config/network-config.js";
import { leaveNetwork } from "../src/lease/admin.js";
import { LeaseKeeper, PoolExhaustedError, type KeeperEvent } from "../src/lease/keeper.js";
import { decodeLeaseValue, subnetKeyName } from "../src/lease/lease-codec.js";
import { FakeClock, settle } from "./support/fake-clock.js";
import { MemoryRegistry } from "./support/memory-registry.js";

const config = validateNetworkConfig({ Network: "172.30.0.0/16" });
const attrs = { publicIp: "10.0.0.2", backendType: "vxlan", vni: 1, vtepMac: "02:00:00:00:00:02" };
const cidr = (text: string): Cidr => parseCidr(text)!;

function setup(options: { preferred?: Cidr; ttl?: number } = {}): {
  clock: FakeClock;
  registry: MemoryRegistry;
  keeper: LeaseKeeper;
  events: KeeperEvent[];
} {
  const clock = new FakeClock();
  const registry = new MemoryRegistry(clock);
  const keeper = new LeaseKeeper({
    registry,
    clock,
    config,
    attrs,
    ttlSeconds: options.ttl ?? 60,
    preferred: options.preferred,
    random: () => 0,
  });
  const events: KeeperEvent[] = [];
  keeper.events.on((event) => events.push(event));
  return { clock, registry, keeper, events };
}

const states = (events: KeeperEvent[]): string[] => events.flatMap((e) => (e.type === "state" ? [e.to] : []));

describe("lease keeper (state machine, fake registry and clock)", () => {
  it("acquires the first free subnet and goes idle → acquiring → held", async () => {
    const { keeper, events, registry } = setup();
    const lease = await keeper.acquire(new AbortController().signal);
    assert.equal(formatCidr(lease.subnet), "172.30.1.0/24");
    assert.deepEqual(states(events), ["acquiring", "held"]);
    assert.equal(registry.entries.size, 1);
    assert.ok(events.some((e) => e.type === "acquired" && e.source === "random"));
  });

  it("comes back to the lease that names its IP (restart) without rewriting it", async () => {
    const { keeper, registry, clock } = setup();
    const first = await keeper.acquire(new AbortController().signal);
    const writes = registry.calls.filter((c) => c === "createLease" || c === "replaceLease").length;
    const again = new LeaseKeeper({ registry, clock, config, attrs, ttlSeconds: 60, random: () => 0.5 });
    const events: KeeperEvent[] = [];
    again.events.on((e) => events.push(e));
    const second = await again.acquire(new AbortController().signal);
    assert.equal(formatCidr(second.subnet), formatCidr(first.subnet));
    assert.equal(second.leaseId, first.leaseId);
    assert.ok(events.some((e) => e.type === "acquired" && e.source === "reused"));
    assert.equal(registry.calls.filter((c) => c === "createLease" || c === "replaceLease").length, writes);
  });

  it("retries another subnet after losing a race", async () => {
    const { keeper, registry, events } = setup({ preferred: cidr("172.30.9.0/24") });
    // Another node creates the preferred subnet between our listing and our create.
    const realCreate = registry.createLease.bind(registry);
    let raced = false;
    registry.createLease = (subnet, a, leaseId) => {
      if (!raced) {
        raced = true;
        registry.putRaw(subnet, '{"PublicIP":"10.0.0.99"}', 60);
      }
      return realCreate(subnet, a, leaseId);
    };
    const lease = await keeper.acquire(new AbortController().signal);
    assert.ok(events.some((e) => e.type === "race-lost" && formatCidr(e.subnet) === "172.30.9.0/24"));
    assert.equal(formatCidr(lease.subnet), "172.30.1.0/24");
    assert.ok(events.some((e) => e.type === "acquired" && e.racesLost === 1));
  });

  it("uses a reservation naming its IP and never attaches a TTL to it", async () => {
    const { keeper, registry } = setup();
    registry.putRaw(cidr("172.30.200.0/24"), '{"PublicIP":"10.0.0.2"}');
    const lease = await keeper.acquire(new AbortController().signal);
    assert.equal(formatCidr(lease.subnet), "172.30.200.0/24");
    assert.equal(lease.leaseId, undefined);
    const entry = registry.entries.get("172.30.200.0-24");
    assert.equal(entry?.leaseId, undefined);
    // Its value now carries our backend data.
    assert.match(entry?.value ?? "", /"VtepMAC":"02:00:00:00:00:02"/);
  });

  it("fails one attempt with a clear error when the pool is exhausted", async () => {
    const clock = new FakeClock();
    const registry = new MemoryRegistry(clock);
    const small = validateNetworkConfig({ Network: "10.9.0.0/28" });
    for (const s of ["10.9.0.4/30", "10.9.0.8/30", "10.9.0.12/30"]) registry.putRaw(cidr(s), '{"PublicIP":"1.1.1.1"}');
    const keeper = new LeaseKeeper({ registry, clock, config: small, attrs, ttlSeconds: 60 });
    await assert.rejects(keeper.acquireOnce(), (error: unknown) => {
      assert.ok(error instanceof PoolExhaustedError);
      assert.equal(error.code, "POOL_EXHAUSTED");
      assert.match(
        error.message,
        /no free subnet in pool 10\.9\.0\.0\/28 \(\/30 subnets 10\.9\.0\.4–10\.9\.0\.12\): 3 of 3 subnets are leased or reserved/,
      );
      return true;
    });
  });

  it("renews every ttl/3 and re-acquires the same subnet after the key is deleted", async () => {
    const { keeper, registry, clock, events } = setup({ ttl: 30 });
    const controller = new AbortController();
    const running = keeper.run(controller.signal);
    await settle();
    const held = keeper.current;
    assert.ok(held !== undefined);
    await clock.advance(10_000);
    assert.ok(events.some((e) => e.type === "renewed"));
    registry.remove("172.30.1.0-24");
    keeper.notifyOwnKeyGone(held, "deleted");
    await clock.advance(1);
    assert.ok(events.some((e) => e.type === "lost" && e.reason === "deleted"));
    assert.equal(formatCidr(keeper.current?.subnet ?? cidr("0.0.0.0/0")), "172.30.1.0/24");
    assert.notEqual(keeper.current?.leaseId, held.leaseId);
    assert.deepEqual(states(events), ["acquiring", "held", "lost", "acquiring", "held"]);
    controller.abort();
    await running;
    assert.equal(keeper.state, "stopped");
  });

  it("notices an expired lease at renewal and re-acquires, retrying while etcd is down", async () => {
    const { keeper, registry, clock, events } = setup({ ttl: 30 });
    const controller = new AbortController();
    const running = keeper.run(controller.signal);
    await settle();
    registry.failing = true;
    await clock.advance(10_000);
    assert.ok(events.some((e) => e.type === "retrying" && e.phase === "renew"));
    await clock.advance(40_000); // the lease runs out while etcd is unreachable
    registry.failing = false;
    await clock.advance(15_000);
    assert.ok(events.some((e) => e.type === "lost" && e.reason === "expired"));
    assert.equal(keeper.state, "held");
    assert.equal(formatCidr(keeper.current?.subnet ?? cidr("0.0.0.0/0")), "172.30.1.0/24");
    controller.abort();
    await running;
  });

  it("leave (the decommission path) deletes the key and revokes the lease; a reservation is kept", async () => {
    const { keeper, registry } = setup();
    const held = await keeper.acquire(new AbortController().signal);
    const outcome = await leaveNetwork(registry, held.attrs.publicIp);
    assert.deepEqual(outcome.released.map(formatCidr), [formatCidr(held.subnet)]);
    assert.equal(registry.entries.size, 0);
    assert.equal(
      await registry.timeToLive(held.leaseId ?? assert.fail("no etcd lease")),
      undefined,
      "the etcd lease is revoked",
    );

    const other = setup();
    other.registry.putRaw(cidr("172.30.50.0/24"), '{"PublicIP":"10.0.0.2"}');
    const reserved = await other.keeper.acquire(new AbortController().signal);
    const kept = await leaveNetwork(other.registry, reserved.attrs.publicIp);
    assert.deepEqual(kept.keptReservations.map(formatCidr), ["172.30.50.0/24"]);
    assert.equal(other.registry.entries.size, 1);
  });

  it("writes its key back when it is overwritten with garbage or detached from its etcd lease, in a transaction", async () => {
    const { keeper, registry, clock, events } = setup({ ttl: 30 });
    const controller = new AbortController();
    const running = keeper.run(controller.signal);
    await settle();
    const held = keeper.current!;
    const key = "172.30.1.0-24";
    for (const [value, keepLease] of [
      ["garbage", true],
      ['{"PublicIP":"10.0.0.2"}', false],
    ] as const) {
      registry.overwrite(held.subnet, value, keepLease);
      const seen = registry.entries.get(key)!;
      keeper.notifyOwnKeyChanged({
        subnet: held.subnet,
        attrs: decodeLeaseValue(seen.value),
        leaseId: seen.leaseId,
        modRevision: String(seen.modRevision),
      });
      await clock.advance(1);
      const now = registry.entries.get(key)!;
      assert.deepEqual(decodeLeaseValue(now.value), { ok: true, value: attrs }, `after ${value}`);
      assert.equal(now.leaseId, held.leaseId, "back on our etcd lease");
    }
    assert.equal(events.filter((e) => e.type === "repaired").length, 2);
    assert.ok(
      events.some((e) => e.type === "repaired" && e.found.startsWith("value is not valid JSON")),
      "the log says what the key held",
    );
    assert.ok(!events.some((e) => e.type === "lost"), "a repair keeps the subnet and the etcd lease");
    // Our own write seen by the watcher is not a change to repair.
    const calls = registry.calls.length;
    const ours = registry.entries.get(key)!;
    keeper.notifyOwnKeyChanged({
      subnet: held.subnet,
      attrs: decodeLeaseValue(ours.value),
      leaseId: ours.leaseId,
      modRevision: String(ours.modRevision),
    });
    await clock.advance(1);
    assert.equal(registry.calls.slice(calls).filter((c) => c === "replaceLease").length, 0);
    controller.abort();
    await running;
  });

  it("moves when another node's value is written over its key, and re-acquires when its etcd lease is gone", async () => {
    const { keeper, registry, clock, events } = setup({ ttl: 30 });
    const controller = new AbortController();
    const running = keeper.run(controller.signal);
    await settle();
    const held = keeper.current!;
    registry.putRaw(held.subnet, '{"PublicIP":"10.0.0.66"}', 60);
    const taken = registry.entries.get("172.30.1.0-24")!;
    keeper.notifyOwnKeyChanged({
      subnet: held.subnet,
      attrs: decodeLeaseValue(taken.value),
      leaseId: taken.leaseId,
      modRevision: String(taken.modRevision),
    });
    await clock.advance(1);
    assert.ok(events.some((e) => e.type === "lost" && e.reason === "taken"));
    const moved = keeper.current!;
    assert.notEqual(formatCidr(moved.subnet), "172.30.1.0/24");
    // Garbage while our etcd lease is gone: the repair cannot be on our lease; we acquire again instead.
    registry.revokeNow(moved.leaseId!);
    registry.putRaw(moved.subnet, "garbage");
    const garbage = registry.entries.get(subnetKeyName(moved.subnet))!;
    keeper.notifyOwnKeyChanged({
      subnet: moved.subnet,
      attrs: decodeLeaseValue(garbage.value),
      leaseId: garbage.leaseId,
      modRevision: String(garbage.modRevision),
    });
    await clock.advance(1);
    assert.ok(events.some((e) => e.type === "lost" && e.reason === "expired"));
    // It takes back the same subnet (its key held garbage), on a new etcd lease.
    assert.equal(formatCidr(keeper.current!.subnet), formatCidr(moved.subnet));
    assert.ok(events.some((e) => e.type === "acquired" && e.source === "reclaimed"));
    controller.abort();
    await running;
  });

  it("at start, reclaims the subnet named by subnet.env whose key holds garbage, instead of leasing another", async () => {
    const { keeper, registry, events } = setup({ preferred: cidr("172.30.42.0/24") });
    registry.putRaw(cidr("172.30.42.0/24"), "garbage");
    const lease = await keeper.acquire(new AbortController().signal);
    assert.equal(formatCidr(lease.subnet), "172.30.42.0/24");
    assert.deepEqual(decodeLeaseValue(registry.entries.get("172.30.42.0-24")!.value), { ok: true, value: attrs });
    assert.ok(events.some((e) => e.type === "acquired" && e.source === "reclaimed"));
    assert.equal(registry.entries.size, 1);
  });

  it("after a move to another Network, deletes its other TTL keys (one key per node) and keeps reservations", async () => {
    const { registry, clock } = setup();
    registry.putRaw(
      cidr("172.30.5.0/24"),
      JSON.stringify({
        PublicIP: attrs.publicIp,
        BackendType: "vxlan",
        BackendData: { VNI: 1, VtepMAC: attrs.vtepMac },
      }),
      60,
    );
    registry.putRaw(cidr("172.30.6.0/24"), JSON.stringify({ PublicIP: attrs.publicIp }));
    const moved = validateNetworkConfig({ Network: "10.50.0.0/16" });
    const keeper = new LeaseKeeper({
      registry,
      clock,
      config: moved,
      attrs,
      ttlSeconds: 60,
      preferred: cidr("172.30.5.0/24"),
      random: () => 0,
    });
    const events: KeeperEvent[] = [];
    keeper.events.on((e) => events.push(e));
    const lease = await keeper.acquire(new AbortController().signal);
    assert.equal(formatCidr(lease.subnet), "10.50.1.0/24");
    assert.deepEqual([...registry.entries.keys()].sort(), ["10.50.1.0-24", "172.30.6.0-24"]);
    assert.ok(events.some((e) => e.type === "stale-released" && formatCidr(e.subnet) === "172.30.5.0/24"));
  });
});

describe("lease keeper on a dual-stack network (fake registry and clock)", () => {
  const dual = validateNetworkConfig({ Network: "172.30.0.0/16", EnableIPv6: true, IPv6Network: "fd30::/56" });
  const attrs6 = { ...attrs, publicIpv6: "fd00::2", v6: { vni: 1, vtepMac: "02:00:00:00:06:02" } };
  const keeperOn = (registry: MemoryRegistry, clock: FakeClock, preferred?: Cidr): LeaseKeeper =>
    new LeaseKeeper({ registry, clock, config: dual, attrs: attrs6, ttlSeconds: 60, preferred, random: () => 0 });

  it("acquires one key for both subnets, the IPv6 one at the IPv4 one's place in its pool, with flannel's value", async () => {
    const clock = new FakeClock();
    const registry = new MemoryRegistry(clock);
    const held = await keeperOn(registry, clock, cidr("172.30.5.0/24")).acquire(new AbortController().signal);
    assert.equal(formatCidr(held.subnet), "172.30.5.0/24");
    assert.equal(held.subnet6 === undefined ? "none" : formatCidr6(held.subnet6), "fd30:0:0:5::/64");
    assert.deepEqual([...registry.entries.keys()], ["172.30.5.0-24&fd30:0:0:5::-64"]);
    assert.equal(
      registry.entries.get("172.30.5.0-24&fd30:0:0:5::-64")?.value,
      '{"PublicIP":"10.0.0.2","PublicIPv6":"fd00::2","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:02"},"BackendV6Data":{"VNI":1,"VtepMAC":"02:00:00:00:06:02"}}',
    );
  });

  it("a restart comes back to the same pair; a lost key is re-acquired as the same pair", async () => {
    const clock = new FakeClock();
    const registry = new MemoryRegistry(clock);
    const first = await keeperOn(registry, clock).acquire(new AbortController().signal);
    const again = keeperOn(registry, clock);
    const events: KeeperEvent[] = [];
    again.events.on((e) => events.push(e));
    const second = await again.acquire(new AbortController().signal);
    assert.ok(events.some((e) => e.type === "acquired" && e.source === "reused"));
    assert.equal(subnetKeyName(second.subnet, second.subnet6), subnetKeyName(first.subnet, first.subnet6));
    const controller = new AbortController();
    const running = again.run(controller.signal);
    registry.remove(subnetKeyName(first.subnet, first.subnet6));
    again.notifyOwnKeyGone(first, "deleted");
    await clock.advance(1000);
    const back = again.current ?? assert.fail("not re-acquired");
    assert.equal(subnetKeyName(back.subnet, back.subnet6), subnetKeyName(first.subnet, first.subnet6));
    controller.abort();
    await running;
  });

  it("an IPv6 subnet taken by a flannel node is not reused; the IPv4-only key of an earlier run is released", async () => {
    const clock = new FakeClock();
    const registry = new MemoryRegistry(clock);
    // A flannel node whose pair does not follow our placement holds fd30:0:0:1::/64.
    registry.putRaw(cidr("172.30.9.0/24"), '{"PublicIP":"10.0.0.9"}', 60, parseCidr6("fd30:0:0:1::/64"));
    // This node ran IPv4-only before.
    registry.putRaw(cidr("172.30.3.0/24"), '{"PublicIP":"10.0.0.2"}', 60);
    const held = await keeperOn(registry, clock).acquire(new AbortController().signal);
    assert.equal(formatCidr(held.subnet), "172.30.1.0/24");
    assert.notEqual(held.subnet6 === undefined ? "" : formatCidr6(held.subnet6), "fd30:0:0:1::/64");
    assert.ok(registry.entries.has("172.30.9.0-24&fd30:0:0:1::-64"));
    assert.ok(!registry.entries.has("172.30.3.0-24"), "one key per node");
  });

  it("IPv6-only: a key with an empty IPv4 half, flannel's 0.0.0.0-0&<subnet6>; a restart and a lost key come back to it", async () => {
    const only = validateNetworkConfig({ EnableIPv4: false, EnableIPv6: true, IPv6Network: "fd30::/56" });
    const clock = new FakeClock();
    const registry = new MemoryRegistry(clock);
    registry.putRaw(cidr("0.0.0.0/0"), '{"PublicIP":"10.0.0.9"}', 60, parseCidr6("fd30:0:0:1::/64"));
    const make = (): LeaseKeeper =>
      new LeaseKeeper({ registry, clock, config: only, attrs: attrs6, ttlSeconds: 60, random: () => 0 });
    const first = await make().acquire(new AbortController().signal);
    assert.equal(subnetKeyName(first.subnet, first.subnet6), "0.0.0.0-0&fd30:0:0:2::-64", "the first free one");
    const again = make();
    const second = await again.acquire(new AbortController().signal);
    assert.equal(subnetKeyName(second.subnet, second.subnet6), "0.0.0.0-0&fd30:0:0:2::-64");
    const controller = new AbortController();
    const running = again.run(controller.signal);
    registry.remove("0.0.0.0-0&fd30:0:0:2::-64");
    again.notifyOwnKeyGone(first, "deleted");
    await clock.advance(1000);
    const back = again.current ?? assert.fail("not re-acquired");
    assert.equal(subnetKeyName(back.subnet, back.subnet6), "0.0.0.0-0&fd30:0:0:2::-64", "the same subnet again");
    controller.abort();
    await running;
  });
});
