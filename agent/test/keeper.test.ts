import assert from "node:assert/strict";
import { formatCidr, parseCidr, type Cidr } from "../../lib/src/ipv4.js";
import { validateNetworkConfig } from "../src/config/network-config.js";
import { LeaseKeeper, PoolExhaustedError, type KeeperEvent } from "../src/lease/keeper.js";
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
    keeper.notifyOwnKeyGone(held.subnet, "deleted");
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

  it("release deletes the key and revokes the lease; a reservation is kept", async () => {
    const { keeper, registry } = setup();
    await keeper.acquire(new AbortController().signal);
    await keeper.release();
    assert.equal(registry.entries.size, 0);
    assert.equal(keeper.state, "released");

    const other = setup();
    other.registry.putRaw(cidr("172.30.50.0/24"), '{"PublicIP":"10.0.0.2"}');
    await other.keeper.acquire(new AbortController().signal);
    await other.keeper.release();
    assert.equal(other.registry.entries.size, 1);
    assert.ok(other.events.some((e) => e.type === "released" && e.kept));
  });
});
