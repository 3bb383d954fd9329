// The lease keeper: a small state machine that obtains this node's subnet, keeps its etcd lease alive and
// recovers when the key disappears (expired, revoked, deleted by an admin) or is overwritten (rewritten in a
// transaction while it holds the etcd lease) — it never gives up and never exits the process. Every step is
// reported as a typed event.
//
//   idle ──acquire──▶ acquiring ──▶ held ──(key gone / lease expired)──▶ lost ──▶ acquiring ──▶ held …
//   stop (the signal aborts) ──▶ stopped. Decommissioning is `trellis-agent leave` (lease/admin.ts), not the keeper's.
import { isAborted } from "#lib/abort.js";
import { Backoff, type BackoffPolicy } from "#lib/backoff.js";
import type { Clock } from "#lib/clock.js";
import { Emitter } from "#lib/emitter.js";
import { TrellisError } from "#lib/errors.js";
import { type Cidr } from "#lib/ipv4.js";
import type { Cidr6 } from "#lib/ipv6.js";
import { poolDescription, type NetworkConfig } from "../config/network-config.js";
import { chooseSubnet, chooseSubnet6 } from "./allocate.js";
import { encodeLeaseValue, sameAttrs, sameKey, type LeaseAttrs, type LeaseKeyName } from "./lease-codec.js";
import type { LeaseListing, StoredLease, SubnetRegistry } from "./registry.js";

export type KeeperState = "idle" | "acquiring" | "held" | "lost" | "stopped";

export interface HeldLease {
  readonly subnet: Cidr;
  /** The IPv6 subnet of a dual-stack lease (one key holds both). */
  readonly subnet6?: Cidr6 | undefined;
  readonly attrs: LeaseAttrs;
  /** The etcd lease kept alive; undefined for a reservation (no TTL). */
  readonly leaseId: string | undefined;
  /** Epoch ms when the lease runs out unless renewed; undefined for a reservation. */
  readonly expiresAt: number | undefined;
}

export type AcquireSource = "reused" | "reserved" | "preferred" | "random" | "reclaimed";
export type LossReason = "expired" | "deleted" | "taken";

export type KeeperEvent =
  | { readonly type: "state"; readonly from: KeeperState; readonly to: KeeperState }
  | { readonly type: "acquired"; readonly lease: HeldLease; readonly source: AcquireSource; readonly racesLost: number }
  | { readonly type: "race-lost"; readonly subnet: Cidr }
  | { readonly type: "renewed"; readonly lease: HeldLease }
  /** Our key held something else (garbage, other attributes, detached from our etcd lease): written back. */
  | { readonly type: "repaired"; readonly subnet: Cidr; readonly found: string }
  /** Another TTL key naming our public IP (e.g. of the network before a change): deleted, one key per node. */
  | { readonly type: "stale-released"; readonly subnet: Cidr }
  | { readonly type: "lost"; readonly subnet: Cidr; readonly reason: LossReason }
  | {
      readonly type: "retrying";
      readonly phase: "acquire" | "renew" | "repair" | "release-stale";
      readonly error: unknown;
      readonly retryInMs: number;
    };

/** Retry after etcd errors while acquiring or renewing: 200 ms doubling to 10 s, ±20 % jitter. */
export const KEEPER_RETRY_BACKOFF: BackoffPolicy = { initialMs: 200, maxMs: 10_000, multiplier: 2, jitter: 0.2 };
/** Lost creation races in a row before one acquire attempt gives up (the loop then backs off and tries again). */
export const MAX_RACES_PER_ATTEMPT = 50;
/** After this many lost races in a row the registry is listed again. */
export const RELIST_AFTER_RACES = 4;

export interface KeeperOptions {
  readonly registry: SubnetRegistry;
  readonly clock: Clock;
  readonly config: NetworkConfig;
  readonly attrs: LeaseAttrs;
  readonly ttlSeconds: number;
  /** A subnet to prefer, e.g. the one remembered in subnet.env. */
  readonly preferred?: Cidr | undefined;
  /** The IPv6 subnet to prefer with it (dual-stack). */
  readonly preferred6?: Cidr6 | undefined;
  readonly random?: () => number;
  /** How often to renew; default a third of the TTL. */
  readonly renewIntervalMs?: number;
  readonly backoff?: BackoffPolicy;
}

/**
 * The etcd lease for one acquisition, granted while the first listing is in flight (one round trip saved on the
 * common path); release() revokes it when nothing ended up attached to it (e.g. a live lease was adopted).
 */
class PrefetchedGrant {
  private readonly pending: Promise<string>;
  id: string | undefined;

  constructor(registry: SubnetRegistry, ttlSeconds: number) {
    this.pending = registry.grantLease(ttlSeconds).then((id) => (this.id = id));
    this.pending.catch(() => undefined); // awaited by get(); never an unhandled rejection
  }

  get(): Promise<string> {
    return this.pending;
  }

  async release(registry: SubnetRegistry): Promise<void> {
    const id = await this.pending.catch(() => undefined);
    if (id !== undefined) await registry.revoke(id).catch(() => undefined);
  }
}

export class PoolExhaustedError extends TrellisError {
  constructor(
    config: NetworkConfig,
    readonly poolSize: number,
    readonly taken: number,
  ) {
    super(
      "POOL_EXHAUSTED",
      `no free subnet in pool ${poolDescription(config)}: ${taken} of ${poolSize} subnets are leased or reserved`,
    );
  }
}

export class LeaseKeeper {
  readonly events = new Emitter<KeeperEvent>();
  private stateValue: KeeperState = "idle";
  private held: HeldLease | undefined;
  private preferred: Cidr | undefined;
  private preferred6: Cidr6 | undefined;
  private pendingLoss: LossReason | undefined;
  /** Our key as the watcher last saw it, when it is not what we wrote: to be written back. */
  private pendingRepair: StoredLease | undefined;
  /** Delay before retrying a failed repair; undefined when the last one did not fail. */
  private backoffDelay: number | undefined;
  private lastErrorValue: unknown;
  private wake: AbortController = new AbortController();
  private readonly random: () => number;
  private readonly backoff: Backoff;

  constructor(private readonly options: KeeperOptions) {
    this.preferred = options.preferred;
    this.preferred6 = options.preferred6;
    this.random = options.random ?? Math.random;
    this.backoff = new Backoff(options.backoff ?? KEEPER_RETRY_BACKOFF, this.random);
  }

  get state(): KeeperState {
    return this.stateValue;
  }

  get current(): HeldLease | undefined {
    return this.held;
  }

  /** The error of the last failed etcd step (acquire, renew, repair), until one succeeds. */
  get lastError(): unknown {
    return this.lastErrorValue;
  }

  private setState(to: KeeperState): void {
    const from = this.stateValue;
    if (from === to) return;
    this.stateValue = to;
    this.events.emit({ type: "state", from, to });
  }

  /** One acquisition: retries lost races, throws on etcd errors and on an exhausted pool. */
  async acquireOnce(): Promise<HeldLease> {
    const { registry, config, attrs } = this.options;
    const exclude = new Set<number>();
    const exclude6 = new Set<bigint>();
    // One etcd lease per acquisition, reused across lost races (no grant/revoke churn under contention).
    const grant = new PrefetchedGrant(registry, this.options.ttlSeconds);
    let held: HeldLease | undefined;
    try {
      let listing: LeaseListing | undefined;
      for (let races = 0; races < MAX_RACES_PER_ATTEMPT; races++) {
        // A lost race usually means one more key: choosing again from the same listing (minus what we lost) is
        // as good as listing again, and halves the requests when hundreds of nodes start together.
        // Serializable: a stale answer only costs a lost race, and it spares etcd a consensus round per node.
        if (listing === undefined || races % RELIST_AFTER_RACES === 0)
          listing = await registry.listLeases("serializable");
        const choice = chooseSubnet({
          config,
          leases: listing.leases,
          publicIp: attrs.publicIp,
          preferred: this.preferred,
          preferred6: this.preferred6,
          exclude,
          exclude6,
          racesLost: races,
          random: this.random,
        });
        if (choice.kind === "exhausted") throw new PoolExhaustedError(config, choice.poolSize, choice.taken);
        held =
          choice.kind === "reuse"
            ? await this.adopt(choice.lease, grant)
            : choice.kind === "reclaim"
              ? await this.reclaim(choice.lease, grant)
              : await this.createPair(choice.subnet, choice.subnet6, listing, grant);
        if (held !== undefined) {
          const source: AcquireSource =
            choice.kind === "reuse"
              ? choice.reserved
                ? "reserved"
                : "reused"
              : choice.kind === "reclaim"
                ? "reclaimed"
                : choice.source;
          this.held = held;
          this.preferred = held.subnet;
          this.preferred6 = held.subnet6;
          this.events.emit({ type: "acquired", lease: held, source, racesLost: races });
          await this.releaseStale(listing, held);
          return held;
        }
        const lostSubnet = choice.kind === "create" ? choice.subnet : choice.lease.subnet;
        if (choice.kind !== "create") listing = undefined; // the key changed under us: look again
        exclude.add(lostSubnet.ip);
        const lost6 = choice.kind === "create" ? choice.subnet6 : choice.lease.subnet6;
        if (lost6 !== undefined) exclude6.add(lost6.ip);
        this.events.emit({ type: "race-lost", subnet: lostSubnet });
      }
      throw new TrellisError("CONFLICT", `lost ${MAX_RACES_PER_ATTEMPT} subnet races in a row; will retry`);
    } finally {
      if (held === undefined || held.leaseId !== grant.id) await grant.release(registry);
    }
  }

  private expiry(ttlSeconds: number): number {
    return this.options.clock.now() + ttlSeconds * 1000;
  }

  /** Creates the key for `subnet` and, on a dual-stack network, the IPv6 subnet chosen with it: one key, one write. */
  private async createPair(
    subnet: Cidr,
    chosen6: Cidr6 | undefined,
    listing: LeaseListing,
    grant: PrefetchedGrant,
  ): Promise<HeldLease | undefined> {
    const { config, registry, attrs } = this.options;
    let subnet6 = chosen6;
    if (subnet6 === undefined && config.ipv6 !== undefined) {
      subnet6 = chooseSubnet6(config, listing.leases, subnet, this.preferred6);
      if (subnet6 === undefined)
        throw new TrellisError("POOL_EXHAUSTED", `no free IPv6 subnet in pool ${poolDescription(config)}`);
    }
    const leaseId = await grant.get();
    if (!(await registry.createLease(subnet, attrs, leaseId, subnet6))) return undefined;
    return { subnet, subnet6, attrs, leaseId, expiresAt: this.expiry(this.options.ttlSeconds) };
  }

  /** Takes back our preferred subnet whose key holds a value nobody can decode (only if it is unchanged since). */
  private async reclaim(lease: StoredLease, grant: PrefetchedGrant): Promise<HeldLease | undefined> {
    const leaseId = await grant.get();
    if (
      !(await this.options.registry.replaceLease(
        lease.subnet,
        this.options.attrs,
        lease.modRevision,
        leaseId,
        lease.subnet6,
      ))
    )
      return undefined;
    return {
      subnet: lease.subnet,
      subnet6: lease.subnet6,
      attrs: this.options.attrs,
      leaseId,
      expiresAt: this.expiry(this.options.ttlSeconds),
    };
  }

  /**
   * One key per node: other TTL keys naming our public IP are leftovers of ours (a node moved to a new Network
   * keeps its old key otherwise). Each is deleted only if unchanged since the listing; reservations are the admin's.
   */
  private async releaseStale(listing: LeaseListing | undefined, held: HeldLease): Promise<void> {
    for (const lease of listing?.leases ?? []) {
      if (
        sameKey(lease, held) ||
        lease.leaseId === undefined ||
        !lease.attrs.ok ||
        lease.attrs.value.publicIp !== held.attrs.publicIp
      )
        continue;
      try {
        if (await this.options.registry.deleteLease(lease.subnet, lease.modRevision, lease.subnet6))
          this.events.emit({ type: "stale-released", subnet: lease.subnet });
      } catch (error) {
        // Not worth failing the acquisition: it is retried at the next one, and the key expires with its lease.
        this.events.emit({ type: "retrying", phase: "release-stale", error, retryInMs: 0 });
      }
    }
  }

  /** Takes over a lease that names our public IP: a reservation keeps no TTL; a live lease is adopted as is. */
  private async adopt(lease: StoredLease, grant: PrefetchedGrant): Promise<HeldLease | undefined> {
    const { registry, attrs, ttlSeconds } = this.options;
    const unchanged = lease.attrs.ok && sameAttrs(lease.attrs.value, attrs);
    if (lease.leaseId === undefined) {
      if (
        !unchanged &&
        !(await registry.replaceLease(lease.subnet, attrs, lease.modRevision, undefined, lease.subnet6))
      )
        return undefined;
      return { subnet: lease.subnet, subnet6: lease.subnet6, attrs, leaseId: undefined, expiresAt: undefined };
    }
    if (unchanged) {
      const ttl = await registry.keepAlive(lease.leaseId);
      if (ttl !== undefined)
        return {
          subnet: lease.subnet,
          subnet6: lease.subnet6,
          attrs,
          leaseId: lease.leaseId,
          expiresAt: this.expiry(ttl),
        };
    }
    const leaseId = await grant.get();
    if (!(await registry.replaceLease(lease.subnet, attrs, lease.modRevision, leaseId, lease.subnet6)))
      return undefined;
    // The key now hangs on the new lease; the old one holds nothing of ours.
    await registry.revoke(lease.leaseId).catch(() => undefined);
    return { subnet: lease.subnet, subnet6: lease.subnet6, attrs, leaseId, expiresAt: this.expiry(ttlSeconds) };
  }

  /** Acquires, retrying etcd errors and an exhausted pool with backoff, until a lease is held or the signal aborts. */
  async acquire(signal: AbortSignal): Promise<HeldLease> {
    this.setState("acquiring");
    while (true) {
      signal.throwIfAborted();
      try {
        const lease = await this.acquireOnce();
        this.backoff.reset();
        this.lastErrorValue = undefined;
        this.setState("held");
        return lease;
      } catch (error) {
        this.lastErrorValue = error;
        const retryInMs = this.backoff.next();
        this.events.emit({ type: "retrying", phase: "acquire", error, retryInMs });
        await this.options.clock.sleep(retryInMs, signal);
      }
    }
  }

  /** The watcher saw our key deleted. */
  notifyOwnKeyGone(key: LeaseKeyName, reason: "deleted" | "taken"): void {
    if (this.held === undefined || !sameKey(this.held, key)) return;
    this.pendingLoss = reason;
    this.wake.abort();
  }

  /**
   * The watcher saw our key written. Our own write is ignored; a value naming another node's public IP means it
   * took the subnet (we move); anything else — garbage, other attributes, the key detached from our etcd lease — is
   * written back while we hold the lease.
   */
  notifyOwnKeyChanged(lease: StoredLease): void {
    const held = this.held;
    if (held === undefined || !sameKey(held, lease)) return;
    if (lease.attrs.ok && lease.attrs.value.publicIp !== held.attrs.publicIp) {
      this.notifyOwnKeyGone(lease, "taken");
      return;
    }
    if (lease.attrs.ok && sameAttrs(lease.attrs.value, held.attrs) && lease.leaseId === held.leaseId) {
      this.pendingRepair = undefined;
      return;
    }
    this.pendingRepair = lease;
    this.wake.abort();
  }

  /** Set by notifyOwnKeyGone() during an await (a method, so the compiler does not assume it unchanged). */
  private lossWhileWaiting(): LossReason | undefined {
    return this.pendingLoss;
  }

  private renewIntervalMs(): number {
    return this.options.renewIntervalMs ?? Math.max(1000, (this.options.ttlSeconds * 1000) / 3);
  }

  /** Keeps the lease until the signal aborts: renews, and re-acquires after a loss. Acquires first if needed. */
  async run(signal: AbortSignal): Promise<void> {
    try {
      while (!signal.aborted) {
        if (this.held === undefined) {
          await this.acquire(signal);
          continue;
        }
        const repairing = this.repairWhileWaiting() !== undefined;
        await this.waitOrWake(repairing ? (this.backoffDelay ?? 0) : this.renewIntervalMs(), signal);
        if (isAborted(signal)) break;
        const loss = this.lossWhileWaiting();
        if (loss !== undefined) {
          this.lose(loss);
          continue;
        }
        const repair = this.repairWhileWaiting();
        if (repair !== undefined) {
          await this.repair(repair);
          continue;
        }
        await this.renew(signal);
      }
    } catch (error) {
      if (!signal.aborted) throw error;
    }
    this.setState("stopped");
  }

  /** Set by notifyOwnKeyChanged() during an await. */
  private repairWhileWaiting(): StoredLease | undefined {
    return this.pendingRepair;
  }

  /** Writes our value back over what the watcher saw, in one transaction on its revision, on our etcd lease. */
  private async repair(found: StoredLease): Promise<void> {
    const held = this.held;
    if (held === undefined) return;
    const { registry } = this.options;
    try {
      const written = await registry.replaceLease(
        held.subnet,
        held.attrs,
        found.modRevision,
        held.leaseId,
        held.subnet6,
      );
      if (this.pendingRepair === found) this.pendingRepair = undefined;
      this.backoffDelay = undefined;
      this.lastErrorValue = undefined;
      // Not written: the key changed again since; the watcher reports that change, and we judge it then.
      if (written) this.events.emit({ type: "repaired", subnet: held.subnet, found: describeFound(found, held) });
    } catch (error) {
      this.lastErrorValue = error;
      // A put on an etcd lease that no longer exists fails: then we no longer hold the subnet at all.
      const alive =
        held.leaseId === undefined
          ? true
          : await registry.keepAlive(held.leaseId).then(
              (ttl) => ttl !== undefined,
              () => true,
            );
      if (!alive) {
        this.pendingRepair = undefined;
        this.lose("expired");
        return;
      }
      this.backoffDelay = this.backoff.next();
      this.events.emit({ type: "retrying", phase: "repair", error, retryInMs: this.backoffDelay });
    }
  }

  private async waitOrWake(ms: number, signal: AbortSignal): Promise<void> {
    if (this.pendingLoss !== undefined) return;
    if (this.pendingRepair !== undefined && ms === 0) return;
    this.wake = new AbortController();
    await this.options.clock.sleep(ms, AbortSignal.any([signal, this.wake.signal])).catch(() => undefined);
  }

  private lose(reason: LossReason): void {
    const lost = this.held;
    this.pendingLoss = undefined;
    this.pendingRepair = undefined;
    this.held = undefined;
    if (lost === undefined) return;
    this.preferred = lost.subnet; // the same subnet again when it is still free
    this.preferred6 = lost.subnet6;
    this.setState("lost");
    this.events.emit({ type: "lost", subnet: lost.subnet, reason });
  }

  private async renew(signal: AbortSignal): Promise<void> {
    const lease = this.held;
    if (lease?.leaseId === undefined) return; // a reservation has nothing to renew
    while (!signal.aborted && this.pendingLoss === undefined) {
      try {
        const ttl = await this.options.registry.keepAlive(lease.leaseId);
        if (ttl === undefined) {
          this.lose("expired");
          return;
        }
        this.backoff.reset();
        this.lastErrorValue = undefined;
        this.held = { ...lease, expiresAt: this.expiry(ttl) };
        this.events.emit({ type: "renewed", lease: this.held });
        return;
      } catch (error) {
        this.lastErrorValue = error;
        const retryInMs = this.backoff.next();
        this.events.emit({ type: "retrying", phase: "renew", error, retryInMs });
        await this.waitOrWake(retryInMs, signal);
      }
    }
  }
}

/** What our key held instead of our value, in a few words for the log. */
function describeFound(found: StoredLease, held: HeldLease): string {
  if (!found.attrs.ok) return found.attrs.reason;
  if (!sameAttrs(found.attrs.value, held.attrs)) return `other attributes: ${encodeLeaseValue(found.attrs.value)}`;
  return found.leaseId === undefined
    ? "the key without our etcd lease (no TTL)"
    : `the key on etcd lease ${found.leaseId}, not ours`;
}
