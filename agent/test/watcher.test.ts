import assert from "node:assert/strict";
import { formatCidr, parseCidr, type Cidr } from "../../lib/src/ipv4.js";
import { PeerWatcher, type WatcherEvent } from "../src/lease/watcher.js";
import { FakeClock, settle } from "./support/fake-clock.js";
import { MemoryRegistry } from "./support/memory-registry.js";

const cidr = (text: string): Cidr => parseCidr(text)!;
const value = (ip: string, mac = "02:00:00:00:00:01"): string =>
  `{"PublicIP":"${ip}","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`;

function setup(own: Cidr | undefined = cidr("172.30.1.0/24")): {
  clock: FakeClock;
  registry: MemoryRegistry;
  watcher: PeerWatcher;
  events: WatcherEvent[];
  controller: AbortController;
} {
  const clock = new FakeClock();
  const registry = new MemoryRegistry(clock);
  const watcher = new PeerWatcher({ registry, clock, publicIp: "10.0.0.1", ownSubnet: () => own, random: () => 0.5 });
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

  it("reports its own key deleted or overwritten by another node", async () => {
    const { registry, watcher, events, controller } = setup();
    registry.putRaw(cidr("172.30.1.0/24"), value("10.0.0.1"));
    const running = watcher.run(controller.signal);
    await settle();
    registry.putRaw(cidr("172.30.1.0/24"), value("10.0.0.66"));
    registry.remove("172.30.1.0-24");
    await settle();
    assert.deepEqual(
      events.filter((e) => e.type === "own-taken" || e.type === "own-removed").map((e) => e.type),
      ["own-taken", "own-removed"],
    );
    assert.equal(watcher.peers().size, 0);
    controller.abort();
    await running;
  });
});
