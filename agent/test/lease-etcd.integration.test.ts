// The lease layer against a real etcd: keeper, watcher and registry adapter together.
import assert from "node:assert/strict";
import { formatCidr, parseCidr, type Cidr } from "#lib/ipv4.js";
import { formatCidr6 } from "#lib/ipv6.js";
import { systemClock } from "#lib/clock.js";
import { isTrellisError } from "#lib/errors.js";
import { validateNetworkConfig, type NetworkConfig } from "../src/config/network-config.js";
import { LeaseKeeper, PoolExhaustedError, type KeeperEvent } from "../src/lease/keeper.js";
import { PeerWatcher, type WatcherEvent } from "../src/lease/watcher.js";
import { reserveSubnet } from "../src/lease/admin.js";
import type { SubnetRegistry } from "../src/lease/registry.js";
import { waitFor } from "../../lab/src/ports.js";
import { useEtcd } from "./support/etcd-fixture.js";

const cidr = (text: string): Cidr => parseCidr(text)!;
const config = validateNetworkConfig({ Network: "172.30.0.0/16", SubnetMax: "172.30.254.0" });
const shapes = [{ network: config.network, subnetLen: config.subnetLen }];

function keeper(
  registry: SubnetRegistry,
  publicIp: string,
  options: { ttl?: number; cfg?: NetworkConfig; preferred?: Cidr } = {},
): LeaseKeeper {
  return new LeaseKeeper({
    registry,
    clock: systemClock,
    config: options.cfg ?? config,
    attrs: { publicIp, backendType: "vxlan", vni: 1, vtepMac: "02:aa:bb:cc:dd:01" },
    ttlSeconds: options.ttl ?? 60,
    preferred: options.preferred,
    renewIntervalMs: 500,
    backoff: { initialMs: 50, maxMs: 500, multiplier: 2, jitter: 0.2 },
  });
}

describe("leases on a real etcd", function () {
  this.timeout(60_000);
  const etcd = useEtcd();

  it("keeps the same subnet across restarts, and adopts the live lease without a new write", async () => {
    const registry = await etcd.registry();
    const first = await keeper(registry, "10.0.0.2").acquire(AbortSignal.timeout(10_000));
    const listing = await registry.listLeases();
    const second = await keeper(registry, "10.0.0.2").acquire(AbortSignal.timeout(10_000));
    assert.equal(formatCidr(second.subnet), formatCidr(first.subnet));
    assert.equal(second.leaseId, first.leaseId);
    assert.equal((await registry.listLeases()).leases[0]?.modRevision, listing.leases[0]?.modRevision);
    // The key carries flannel's value and a real TTL.
    const stored = await etcd.server.etcdctl(
      "get",
      `${registry.prefix}/subnets/${formatCidr(first.subnet).replace("/", "-")}`,
      "--print-value-only",
    );
    assert.equal(
      stored.trim(),
      '{"PublicIP":"10.0.0.2","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:aa:bb:cc:dd:01"}}',
    );
    assert.ok(((await registry.timeToLive(first.leaseId!)) ?? 0) > 50);
  });

  it("a remembered subnet is taken again when free", async () => {
    const registry = await etcd.registry();
    const lease = await keeper(registry, "10.0.0.3", { preferred: cidr("172.30.77.0/24") }).acquire(
      AbortSignal.timeout(10_000),
    );
    assert.equal(formatCidr(lease.subnet), "172.30.77.0/24");
  });

  it("honours a reservation: never given to others, used by the node it names", async () => {
    const registry = await etcd.registry();
    await reserveSubnet(registry, config, cidr("172.30.1.0/24"), "10.0.0.50");
    const others = await Promise.all(
      Array.from({ length: 20 }, (_, i) => keeper(registry, `10.0.1.${i + 1}`).acquire(AbortSignal.timeout(20_000))),
    );
    assert.ok(others.every((lease) => formatCidr(lease.subnet) !== "172.30.1.0/24"));
    const owner = await keeper(registry, "10.0.0.50").acquire(AbortSignal.timeout(10_000));
    assert.equal(formatCidr(owner.subnet), "172.30.1.0/24");
    assert.equal(owner.leaseId, undefined);
    const entry = (await registry.listLeases()).leases.find((l) => formatCidr(l.subnet) === "172.30.1.0/24");
    assert.equal(entry?.leaseId, undefined, "the reservation must stay without TTL");
  });

  it("100 concurrent acquirers get 100 distinct subnets", async () => {
    const registries = await Promise.all(Array.from({ length: 10 }, () => etcd.registry(undefined)));
    const prefix = registries[0]!.prefix;
    const shared = await Promise.all(Array.from({ length: 10 }, () => etcd.registry(prefix)));
    const events: KeeperEvent[] = [];
    const keepers = Array.from({ length: 100 }, (_, i) => {
      const k = keeper(shared[i % shared.length]!, `10.1.${Math.floor(i / 250)}.${(i % 250) + 1}`);
      k.events.on((e) => events.push(e));
      return k;
    });
    const leases = await Promise.all(keepers.map((k) => k.acquire(AbortSignal.timeout(30_000))));
    const subnets = new Set(leases.map((l) => formatCidr(l.subnet)));
    assert.equal(subnets.size, 100);
    assert.equal((await shared[0]!.listLeases()).leases.length, 100);
  });

  it("reports an exhausted pool with its size and how many are taken", async () => {
    const registry = await etcd.registry();
    const small = validateNetworkConfig({ Network: "10.9.0.0/28" });
    for (let i = 0; i < 3; i++)
      await keeper(registry, `10.2.0.${i + 1}`, { cfg: small }).acquire(AbortSignal.timeout(10_000));
    await assert.rejects(
      keeper(registry, "10.2.0.9", { cfg: small }).acquireOnce(),
      (error: unknown) => error instanceof PoolExhaustedError && /pool 10\.9\.0\.0\/28.*3 of 3/.test(error.message),
    );
  });

  for (const how of ["deleted", "revoked"] as const) {
    it(`re-acquires the same subnet after its key is ${how}, without exiting`, async () => {
      const registry = await etcd.registry();
      const k = keeper(registry, "10.0.0.7", { ttl: 30 });
      const watcher = new PeerWatcher({
        registry,
        clock: systemClock,
        shapes,
        publicIp: "10.0.0.7",
        ownLease: () => k.current,
      });
      watcher.events.on((e) => {
        if (e.type === "own-removed") k.notifyOwnKeyGone(e, "deleted");
      });
      const events: KeeperEvent[] = [];
      k.events.on((e) => events.push(e));
      const controller = new AbortController();
      const first = await k.acquire(controller.signal);
      const loops = Promise.all([k.run(controller.signal), watcher.run(controller.signal)]);
      try {
        await waitFor("watch live", () => watcher.live);
        const started = Date.now();
        if (how === "deleted") await registry.deleteLease(first.subnet);
        else await registry.revoke(first.leaseId!);
        await waitFor(
          "re-acquired",
          () => k.state === "held" && k.current !== undefined && k.current.leaseId !== first.leaseId,
          10_000,
        );
        assert.ok(Date.now() - started < 5000, "recovery should take well under 5 s");
        assert.equal(formatCidr(k.current!.subnet), formatCidr(first.subnet));
        assert.ok(events.some((e) => e.type === "lost"));
      } finally {
        controller.abort();
        await loops;
      }
    });
  }

  it("the watcher sees peers come and go, and skips a lease value that is not JSON", async () => {
    const registry = await etcd.registry();
    const watcher = new PeerWatcher({
      registry,
      clock: systemClock,
      shapes,
      publicIp: "10.0.0.1",
      ownLease: () => undefined,
    });
    const events: WatcherEvent[] = [];
    watcher.events.on((e) => events.push(e));
    const controller = new AbortController();
    const running = watcher.run(controller.signal);
    try {
      await waitFor("watch live", () => watcher.live);
      const peer = await keeper(registry, "10.0.0.8").acquire(AbortSignal.timeout(10_000));
      await etcd.server.etcdctl("put", `${registry.prefix}/subnets/172.30.200.0-24`, "garbage");
      await waitFor("peer added", () => watcher.peers().has(formatCidr(peer.subnet)));
      await waitFor("invalid reported", () =>
        events.some((e) => e.type === "invalid" && formatCidr(e.subnet) === "172.30.200.0/24"),
      );
      await registry.deleteLease(peer.subnet);
      await waitFor("peer removed", () => !watcher.peers().has(formatCidr(peer.subnet)));
    } finally {
      controller.abort();
      await running;
    }
  });

  it("a flannel dual-stack key, written with etcdctl, is listed and watched with both halves, and deleted by its key", async () => {
    const registry = await etcd.registry();
    const key = `${registry.prefix}/subnets/172.30.77.0-24&fd30:0:0:4d::-64`;
    const value =
      '{"PublicIP":"10.0.0.77","PublicIPv6":"fd00::77","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:77"},"BackendV6Data":{"VNI":1,"VtepMAC":"02:00:00:00:06:77"}}';
    const watcher = new PeerWatcher({
      registry,
      clock: systemClock,
      shapes,
      publicIp: "10.0.0.1",
      ownLease: () => undefined,
    });
    const controller = new AbortController();
    const running = watcher.run(controller.signal);
    try {
      await waitFor("watch live", () => watcher.live);
      await etcd.server.etcdctl("put", key, value);
      const listed =
        (await registry.listLeases()).leases.find((l) => formatCidr(l.subnet) === "172.30.77.0/24") ??
        assert.fail("the dual-stack key is not listed");
      assert.equal(listed.subnet6 === undefined ? undefined : formatCidr6(listed.subnet6), "fd30:0:0:4d::/64");
      assert.ok(listed.attrs.ok && listed.attrs.value.publicIpv6 === "fd00::77");
      await waitFor("dual-stack peer added", () => watcher.peers().has("172.30.77.0/24&fd30:0:0:4d::/64"));
      assert.ok(await registry.deleteLease(listed.subnet, listed.modRevision, listed.subnet6));
      assert.equal((await etcd.server.etcdctl("get", key, "--print-value-only")).trim(), "");
      await waitFor("dual-stack peer removed", () => watcher.peers().size === 0);
    } finally {
      controller.abort();
      await running;
    }
  });

  it("the config watch sees a put and a delete; listings carry the cluster ID and each key's create revision", async () => {
    const registry = await etcd.registry();
    await registry.putNetworkConfig('{"Network":"172.30.0.0/16"}');
    const first = await registry.readNetworkConfig();
    assert.equal(first.text, '{"Network":"172.30.0.0/16"}');
    const seen: (string | undefined)[] = [];
    const watch = await registry.watchNetworkConfig((BigInt(first.revision) + 1n).toString(), {
      changed: (text) => {
        seen.push(text);
      },
      live: () => undefined,
      broken: () => undefined,
    });
    try {
      await registry.putNetworkConfig('{"Network":"10.50.0.0/16"}');
      await etcd.server.etcdctl("del", `${registry.prefix}/config`);
      await waitFor("config events", () => seen.length === 2);
      assert.deepEqual(seen, ['{"Network":"10.50.0.0/16"}', undefined]);
    } finally {
      await watch.cancel();
    }
    const lease = await keeper(registry, "10.0.0.12").acquire(AbortSignal.timeout(10_000));
    await registry.replaceLease(
      lease.subnet,
      { publicIp: "10.0.0.12" },
      (await registry.listLeases()).leases[0]?.modRevision ?? "0",
      undefined,
    );
    const listing = await registry.listLeases();
    assert.match(listing.clusterId ?? "", /^\d+$/);
    const stored = listing.leases[0];
    assert.ok(
      stored?.createRevision !== undefined && BigInt(stored.createRevision) < BigInt(stored.modRevision),
      "rewriting a key keeps its create revision",
    );
  });

  it("a watch from a compacted revision breaks as 'compacted'", async () => {
    const registry = await etcd.registry();
    const before = (await registry.listLeases()).revision;
    await keeper(registry, "10.0.0.9").acquire(AbortSignal.timeout(10_000));
    const now = (await registry.listLeases()).revision;
    await etcd.server.etcdctl("compact", now);
    const reason = await new Promise<string>((resolve) => {
      void registry.watchLeases(before, {
        updates: () => undefined,
        live: () => undefined,
        broken: (r) => {
          resolve(r);
        },
      });
    });
    assert.equal(reason, "compacted");
  });

  it("keeper and watcher recover after etcd is stopped and started again", async function () {
    this.timeout(60_000);
    const registry = await etcd.registry(undefined, { retry: true });
    const k = keeper(registry, "10.0.0.10", { ttl: 30 });
    const watcher = new PeerWatcher({
      registry,
      clock: systemClock,
      shapes,
      publicIp: "10.0.0.10",
      ownLease: () => k.current,
      backoff: { initialMs: 50, maxMs: 500, multiplier: 2, jitter: 0.2 },
    });
    const keeperEvents: KeeperEvent[] = [];
    const watcherEvents: WatcherEvent[] = [];
    k.events.on((e) => keeperEvents.push(e));
    watcher.events.on((e) => watcherEvents.push(e));
    const controller = new AbortController();
    const lease = await k.acquire(controller.signal);
    const loops = Promise.all([k.run(controller.signal), watcher.run(controller.signal)]);
    try {
      await waitFor("watch live", () => watcher.live);
      await etcd.server.pause();
      await waitFor(
        "failures noticed",
        () => keeperEvents.some((e) => e.type === "retrying") && watcherEvents.some((e) => e.type === "broken"),
        15_000,
      );
      await etcd.server.resume();
      const other = await etcd.registry(registry.prefix);
      const peer = await keeper(other, "10.0.0.11").acquire(AbortSignal.timeout(20_000));
      await waitFor("watcher back", () => watcher.live && watcher.peers().has(formatCidr(peer.subnet)), 20_000);
      const renewedAfter = keeperEvents.length;
      await waitFor(
        "keeper renewing again",
        () => keeperEvents.slice(renewedAfter).some((e) => e.type === "renewed"),
        10_000,
      );
      assert.equal(formatCidr(k.current!.subnet), formatCidr(lease.subnet));
    } finally {
      controller.abort();
      await loops;
    }
  });

  it("translates an unreachable etcd into ETCD_UNAVAILABLE within the request deadline", async () => {
    const registry = await etcd.registry(undefined, { endpoints: ["http://127.0.0.1:1"], requestTimeoutMs: 1000 });
    const started = Date.now();
    await assert.rejects(
      registry.listLeases(),
      (error: unknown) =>
        isTrellisError(error, "ETCD_UNAVAILABLE") && /unreachable at http:\/\/127\.0\.0\.1:1/.test(error.message),
    );
    assert.ok(Date.now() - started < 4000);
  });
});
