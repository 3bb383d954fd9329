// An in-memory SubnetRegistry with etcd's semantics where the lease layer relies on them (create-if-absent,
// compare-mod-revision, TTL leases on a clock, a revisioned watch, compaction, a config watch), plus fault
// injection and a store reset (etcd restored empty).
import type { Clock } from "#lib/clock.js";
import { TrellisError } from "#lib/errors.js";
import { type Cidr } from "#lib/ipv4.js";
import type { Cidr6 } from "#lib/ipv6.js";
import { decodeLeaseValue, encodeLeaseValue, subnetKeyName, type LeaseAttrs } from "../../src/lease/lease-codec.js";
import type {
  ConfigWatchSink,
  LeaseListing,
  RegistryUpdate,
  RegistryWatch,
  StoredLease,
  SubnetRegistry,
  WatchSink,
} from "../../src/lease/registry.js";

interface Entry {
  subnet: Cidr;
  subnet6: Cidr6 | undefined;
  value: string;
  leaseId: string | undefined;
  modRevision: number;
  createRevision: number;
}

interface History {
  revision: number;
  update: RegistryUpdate;
}

export class MemoryRegistry implements SubnetRegistry {
  config: string | undefined;
  readonly entries = new Map<string, Entry>();
  private readonly leases = new Map<string, number>(); // id → expiry (ms)
  private revision = 1;
  private compactedAt = 0;
  private nextLease = 1000;
  private history: History[] = [];
  private readonly watches = new Set<{ from: number; sink: WatchSink }>();
  private readonly configWatches = new Set<ConfigWatchSink>();
  clusterId = "1111";
  /** Calls that fail before reaching the "store" (etcd down). */
  failing = false;
  readonly calls: string[] = [];

  constructor(private readonly clock: Clock) {}

  private check(call: string): void {
    this.calls.push(call);
    this.expire();
    if (this.failing) throw new TrellisError("ETCD_UNAVAILABLE", `etcd is unreachable (fake): ${call}`);
  }

  /** Deletes keys whose lease ran out, as etcd does. */
  expire(): void {
    for (const [id, at] of this.leases) {
      if (at > this.clock.now()) continue;
      this.leases.delete(id);
      for (const [key, entry] of this.entries) if (entry.leaseId === id) this.remove(key);
    }
  }

  private publish(update: RegistryUpdate): void {
    this.revision += 1;
    this.history.push({ revision: this.revision, update });
    for (const watch of this.watches) watch.sink.updates([update], String(this.revision));
  }

  private stored(entry: Entry): StoredLease {
    return {
      subnet: entry.subnet,
      ...(entry.subnet6 === undefined ? {} : { subnet6: entry.subnet6 }),
      attrs: decodeLeaseValue(entry.value),
      leaseId: entry.leaseId,
      modRevision: String(entry.modRevision),
      createRevision: String(entry.createRevision),
    };
  }

  private entry(subnet: Cidr, value: string, leaseId: string | undefined, subnet6?: Cidr6): Entry {
    const modRevision = this.revision + 1;
    return {
      subnet,
      subnet6,
      value,
      leaseId,
      modRevision,
      createRevision: this.entries.get(subnetKeyName(subnet, subnet6))?.createRevision ?? modRevision,
    };
  }

  /** Writes or deletes (undefined) the config as an admin would; config watches see it. */
  setConfig(text: string | undefined): void {
    this.config = text;
    this.revision += 1;
    for (const sink of this.configWatches) sink.changed(text, String(this.revision));
  }

  /** etcd restored empty: every key and lease gone, the revision back to 1, every watch broken; maybe a new cluster ID. */
  wipe(options: { clusterId?: string } = {}): void {
    this.entries.clear();
    this.leases.clear();
    this.history = [];
    this.revision = 1;
    this.compactedAt = 0;
    this.config = undefined;
    if (options.clusterId !== undefined) this.clusterId = options.clusterId;
    this.disconnect();
  }

  /** Writes a raw value (as an admin or another agent would), no TTL unless leaseTtlSeconds. */
  putRaw(subnet: Cidr, value: string, leaseTtlSeconds?: number, subnet6?: Cidr6): void {
    let leaseId: string | undefined;
    if (leaseTtlSeconds !== undefined) {
      leaseId = String(this.nextLease++);
      this.leases.set(leaseId, this.clock.now() + leaseTtlSeconds * 1000);
      this.ttlOf.set(leaseId, leaseTtlSeconds);
    }
    const entry = this.entry(subnet, value, leaseId, subnet6);
    this.entries.set(subnetKeyName(subnet, subnet6), entry);
    this.publish({ type: "put", lease: this.stored(entry) });
  }

  /** `etcdctl put KEY VALUE`: the key loses its etcd lease, unless keepLease (`--ignore-lease`). */
  overwrite(subnet: Cidr, value: string, keepLease = false): void {
    const leaseId = keepLease ? this.entries.get(subnetKeyName(subnet))?.leaseId : undefined;
    const entry = this.entry(subnet, value, leaseId);
    this.entries.set(subnetKeyName(subnet), entry);
    this.publish({ type: "put", lease: this.stored(entry) });
  }

  remove(key: string): void {
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    this.entries.delete(key);
    this.publish({ type: "delete", subnet: entry.subnet, subnet6: entry.subnet6 });
  }

  /** `etcdctl del --prefix <prefix>/subnets/`: every key in one transaction, so one watch batch. */
  deleteAll(): void {
    const updates: RegistryUpdate[] = [...this.entries.values()].map((e) => ({
      type: "delete",
      subnet: e.subnet,
      subnet6: e.subnet6,
    }));
    this.entries.clear();
    this.revision += 1;
    for (const update of updates) this.history.push({ revision: this.revision, update });
    for (const watch of this.watches) watch.sink.updates(updates, String(this.revision));
  }

  revokeNow(leaseId: string): void {
    this.leases.set(leaseId, 0);
    this.expire();
  }

  /** Drops history up to now and breaks every watch that needs it, as etcd compaction does. */
  compact(): void {
    this.compactedAt = this.revision;
    this.history = [];
    for (const watch of [...this.watches]) {
      this.watches.delete(watch);
      watch.sink.broken("compacted", new Error("mvcc: required revision has been compacted"));
    }
  }

  /** Breaks every watch as a dropped connection does. */
  disconnect(): void {
    for (const watch of [...this.watches]) {
      this.watches.delete(watch);
      watch.sink.broken("disconnected", new Error("connection dropped"));
    }
    for (const sink of [...this.configWatches]) {
      this.configWatches.delete(sink);
      sink.broken("disconnected", new Error("connection dropped"));
    }
  }

  get watchCount(): number {
    return this.watches.size;
  }

  getNetworkConfig(): Promise<string | undefined> {
    this.check("getNetworkConfig");
    return Promise.resolve(this.config);
  }

  putNetworkConfig(text: string): Promise<void> {
    this.check("putNetworkConfig");
    this.setConfig(text);
    return Promise.resolve();
  }

  readNetworkConfig(): Promise<{ text: string | undefined; revision: string }> {
    this.check("readNetworkConfig");
    return Promise.resolve({ text: this.config, revision: String(this.revision) });
  }

  watchNetworkConfig(_fromRevision: string, sink: ConfigWatchSink): Promise<RegistryWatch> {
    this.check("watchNetworkConfig");
    this.configWatches.add(sink);
    queueMicrotask(() => {
      sink.live();
    });
    return Promise.resolve({
      cancel: () => {
        this.configWatches.delete(sink);
        return Promise.resolve();
      },
    });
  }

  listLeases(): Promise<LeaseListing> {
    this.check("listLeases");
    return Promise.resolve({
      leases: [...this.entries.values()].map((e) => this.stored(e)),
      revision: String(this.revision),
      clusterId: this.clusterId,
    });
  }

  timeToLive(leaseId: string): Promise<number | undefined> {
    this.check("timeToLive");
    const at = this.leases.get(leaseId);
    return Promise.resolve(at === undefined ? undefined : Math.ceil((at - this.clock.now()) / 1000));
  }

  grantLease(ttlSeconds: number): Promise<string> {
    this.check("grantLease");
    const id = String(this.nextLease++);
    this.leases.set(id, this.clock.now() + ttlSeconds * 1000);
    this.ttlOf.set(id, ttlSeconds);
    return Promise.resolve(id);
  }

  private write(subnet: Cidr, subnet6: Cidr6 | undefined, attrs: LeaseAttrs, leaseId: string | undefined): boolean {
    if (leaseId !== undefined && !this.leases.has(leaseId))
      throw new TrellisError("ETCD_FAILED", "requested lease not found");
    const entry = this.entry(subnet, encodeLeaseValue(attrs), leaseId, subnet6);
    this.entries.set(subnetKeyName(subnet, subnet6), entry);
    this.publish({ type: "put", lease: this.stored(entry) });
    return true;
  }

  createLease(subnet: Cidr, attrs: LeaseAttrs, leaseId: string | undefined, subnet6?: Cidr6): Promise<boolean> {
    this.check("createLease");
    if (this.entries.has(subnetKeyName(subnet, subnet6))) return Promise.resolve(false);
    if (subnet6 !== undefined && this.entries.has(subnetKeyName(subnet))) return Promise.resolve(false);
    return Promise.resolve(this.write(subnet, subnet6, attrs, leaseId));
  }

  replaceLease(
    subnet: Cidr,
    attrs: LeaseAttrs,
    modRevision: string,
    leaseId: string | undefined,
    subnet6?: Cidr6,
  ): Promise<boolean> {
    this.check("replaceLease");
    const entry = this.entries.get(subnetKeyName(subnet, subnet6));
    if (entry === undefined || String(entry.modRevision) !== modRevision) return Promise.resolve(false);
    return Promise.resolve(this.write(subnet, subnet6, attrs, leaseId));
  }

  deleteLease(subnet: Cidr, modRevision?: string, subnet6?: Cidr6): Promise<boolean> {
    this.check("deleteLease");
    const key = subnetKeyName(subnet, subnet6);
    const entry = this.entries.get(key);
    if (entry === undefined || (modRevision !== undefined && String(entry.modRevision) !== modRevision))
      return Promise.resolve(false);
    this.remove(key);
    return Promise.resolve(true);
  }

  keepAlive(leaseId: string): Promise<number | undefined> {
    this.check("keepAlive");
    const at = this.leases.get(leaseId);
    if (at === undefined) return Promise.resolve(undefined);
    const ttl = this.ttlOf.get(leaseId) ?? 60;
    this.leases.set(leaseId, this.clock.now() + ttl * 1000);
    return Promise.resolve(ttl);
  }

  /** TTL each lease is renewed to (defaults to 60 s). */
  readonly ttlOf = new Map<string, number>();

  revoke(leaseId: string): Promise<void> {
    this.check("revoke");
    this.revokeNow(leaseId);
    return Promise.resolve();
  }

  watchLeases(fromRevision: string, sink: WatchSink): Promise<RegistryWatch> {
    this.check("watchLeases");
    const from = Number(fromRevision);
    if (from <= this.compactedAt) {
      queueMicrotask(() => {
        sink.broken("compacted", new Error("mvcc: required revision has been compacted"));
      });
      return Promise.resolve({ cancel: () => Promise.resolve() });
    }
    const watch = { from, sink };
    for (const item of this.history) if (item.revision >= from) sink.updates([item.update], String(item.revision));
    this.watches.add(watch);
    queueMicrotask(() => {
      sink.live();
    });
    return Promise.resolve({
      cancel: () => {
        this.watches.delete(watch);
        return Promise.resolve();
      },
    });
  }

  close(): void {
    this.watches.clear();
    this.configWatches.clear();
  }
}
