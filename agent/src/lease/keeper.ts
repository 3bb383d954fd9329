// The lease keeper: a small state machine that obtains this node's subnet, keeps its etcd lease alive and
// recovers when the key disappears (expired, revoked, deleted by an admin) — it never gives up and never exits
// the process. Every step is reported as a typed event.
//
//   idle ──acquire──▶ acquiring ──▶ held ──(key gone / lease expired)──▶ lost ──▶ acquiring ──▶ held …
//                                    └──release()──▶ released          stop ──▶ stopped
import { isAborted } from "../../../lib/src/abort.js";
import { Backoff, type BackoffPolicy } from "../../../lib/src/backoff.js";
import type { Clock } from "../../../lib/src/clock.js";
import { Emitter } from "../../../lib/src/emitter.js";
import { TrellisError } from "../../../lib/src/errors.js";
import { formatCidr, type Cidr } from "../../../lib/src/ipv4.js";
import { poolDescription, type NetworkConfig } from "../config/network-config.js";
import { chooseSubnet } from "./allocate.js";
import { sameAttrs, type LeaseAttrs } from "./lease-codec.js";
import type { LeaseListing, StoredLease, SubnetRegistry } from "./registry.js";

export type KeeperState = "idle" | "acquiring" | "held" | "lost" | "released" | "stopped";

export interface HeldLease {
  readonly subnet: Cidr;
  readonly attrs: LeaseAttrs;
  /** The etcd lease kept alive; undefined for a reservation (no TTL). */
  readonly leaseId: string | undefined;
  /** Epoch ms when the lease runs out unless renewed; undefined for a reservation. */
  readonly expiresAt: number | undefined;
}

export type AcquireSource = "reused" | "reserved" | "preferred" | "random";
export type LossReason = "expired" | "deleted" | "taken";

export type KeeperEvent =
  | { readonly type: "state"; readonly from: KeeperState; readonly to: KeeperState }
  | { readonly type: "acquired"; readonly lease: HeldLease; readonly source: AcquireSource; readonly racesLost: number }
  | { readonly type: "race-lost"; readonly subnet: Cidr }
  | { readonly type: "renewed"; readonly lease: HeldLease }
  | { readonly type: "lost"; readonly subnet: Cidr; readonly reason: LossReason }
  | {
      readonly type: "retrying";
      readonly phase: "acquire" | "renew";
      readonly error: unknown;
      readonly retryInMs: number;
    }
  | { readonly type: "released"; readonly subnet: Cidr; readonly kept: boolean };

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
  private pendingLoss: LossReason | undefined;
  private wake: AbortController = new AbortController();
  private readonly random: () => number;
  private readonly backoff: Backoff;

  constructor(private readonly options: KeeperOptions) {
    this.preferred = options.preferred;
    this.random = options.random ?? Math.random;
    this.backoff = new Backoff(options.backoff ?? KEEPER_RETRY_BACKOFF, this.random);
  }

  get state(): KeeperState {
    return this.stateValue;
  }

  get current(): HeldLease | undefined {
    return this.held;
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
          exclude,
          racesLost: races,
          random: this.random,
        });
        if (choice.kind === "exhausted") throw new PoolExhaustedError(config, choice.poolSize, choice.taken);
        held =
          choice.kind === "reuse" ? await this.adopt(choice.lease, grant) : await this.create(choice.subnet, grant);
        if (held !== undefined) {
          const source: AcquireSource =
            choice.kind === "reuse" ? (choice.reserved ? "reserved" : "reused") : choice.source;
          this.held = held;
          this.preferred = held.subnet;
          this.events.emit({ type: "acquired", lease: held, source, racesLost: races });
          return held;
        }
        const lostSubnet = choice.kind === "reuse" ? choice.lease.subnet : choice.subnet;
        if (choice.kind === "reuse") listing = undefined; // the key changed under us: look again
        exclude.add(lostSubnet.ip);
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

  private async create(subnet: Cidr, grant: PrefetchedGrant): Promise<HeldLease | undefined> {
    const leaseId = await grant.get();
    if (!(await this.options.registry.createLease(subnet, this.options.attrs, leaseId))) return undefined;
    return { subnet, attrs: this.options.attrs, leaseId, expiresAt: this.expiry(this.options.ttlSeconds) };
  }

  /** Takes over a lease that names our public IP: a reservation keeps no TTL; a live lease is adopted as is. */
  private async adopt(lease: StoredLease, grant: PrefetchedGrant): Promise<HeldLease | undefined> {
    const { registry, attrs, ttlSeconds } = this.options;
    const unchanged = lease.attrs.ok && sameAttrs(lease.attrs.value, attrs);
    if (lease.leaseId === undefined) {
      if (!unchanged && !(await registry.replaceLease(lease.subnet, attrs, lease.modRevision, undefined)))
        return undefined;
      return { subnet: lease.subnet, attrs, leaseId: undefined, expiresAt: undefined };
    }
    if (unchanged) {
      const ttl = await registry.keepAlive(lease.leaseId);
      if (ttl !== undefined)
        return { subnet: lease.subnet, attrs, leaseId: lease.leaseId, expiresAt: this.expiry(ttl) };
    }
    const leaseId = await grant.get();
    if (!(await registry.replaceLease(lease.subnet, attrs, lease.modRevision, leaseId))) return undefined;
    // The key now hangs on the new lease; the old one holds nothing of ours.
    await registry.revoke(lease.leaseId).catch(() => undefined);
    return { subnet: lease.subnet, attrs, leaseId, expiresAt: this.expiry(ttlSeconds) };
  }

  /** Acquires, retrying etcd errors and an exhausted pool with backoff, until a lease is held or the signal aborts. */
  async acquire(signal: AbortSignal): Promise<HeldLease> {
    this.setState("acquiring");
    while (true) {
      signal.throwIfAborted();
      try {
        const lease = await this.acquireOnce();
        this.backoff.reset();
        this.setState("held");
        return lease;
      } catch (error) {
        const retryInMs = this.backoff.next();
        this.events.emit({ type: "retrying", phase: "acquire", error, retryInMs });
        await this.options.clock.sleep(retryInMs, signal);
      }
    }
  }

  /** The watcher saw our key deleted, or overwritten by another node. */
  notifyOwnKeyGone(subnet: Cidr, reason: "deleted" | "taken"): void {
    if (this.held === undefined || formatCidr(this.held.subnet) !== formatCidr(subnet)) return;
    this.pendingLoss = reason;
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
        await this.waitOrWake(this.renewIntervalMs(), signal);
        if (isAborted(signal)) break;
        const loss = this.lossWhileWaiting();
        if (loss !== undefined) {
          this.lose(loss);
          continue;
        }
        await this.renew(signal);
      }
    } catch (error) {
      if (!signal.aborted) throw error;
    }
    if (this.stateValue !== "released") this.setState("stopped");
  }

  private async waitOrWake(ms: number, signal: AbortSignal): Promise<void> {
    if (this.pendingLoss !== undefined) return;
    this.wake = new AbortController();
    await this.options.clock.sleep(ms, AbortSignal.any([signal, this.wake.signal])).catch(() => undefined);
  }

  private lose(reason: LossReason): void {
    const lost = this.held;
    this.pendingLoss = undefined;
    this.held = undefined;
    if (lost === undefined) return;
    this.preferred = lost.subnet; // the same subnet again when it is still free
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
        this.held = { ...lease, expiresAt: this.expiry(ttl) };
        this.events.emit({ type: "renewed", lease: this.held });
        return;
      } catch (error) {
        const retryInMs = this.backoff.next();
        this.events.emit({ type: "retrying", phase: "renew", error, retryInMs });
        await this.waitOrWake(retryInMs, signal);
      }
    }
  }

  /** Decommission: deletes our key (a reservation is kept, it belongs to the admin) and revokes the etcd lease. */
  async release(): Promise<void> {
    const lease = this.held;
    if (lease === undefined) return;
    const { registry } = this.options;
    if (lease.leaseId !== undefined) {
      await registry.deleteLease(lease.subnet);
      await registry.revoke(lease.leaseId);
    }
    this.held = undefined;
    this.setState("released");
    this.events.emit({ type: "released", subnet: lease.subnet, kept: lease.leaseId === undefined });
  }
}
