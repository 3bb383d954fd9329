// The peer watcher: list the subnets prefix, then watch from the listed revision. Whenever the watch breaks
// (history compacted, connection lost, etcd cancelled it) it backs off, lists again and emits only the
// difference, so no peer is missed and none is left stale. Every lease is validated (peer-validation.ts) before
// it becomes a peer. Changes to our own key go to the keeper as their own events.
//
// A store reset — etcd restored empty or rebuilt: the revision went backwards, the cluster ID changed, a key's
// revision went backwards, or every lease vanished at once — does not drop the peers: they are kept for a grace
// period while the nodes register again, and only those still absent after it are removed.
import { listAndWatch } from "#lib/list-watch.js";
import { Backoff, type BackoffPolicy } from "#lib/backoff.js";
import type { Clock } from "#lib/clock.js";
import { Emitter } from "#lib/emitter.js";
import { formatCidr, type Cidr } from "#lib/ipv4.js";
import type { Cidr6 } from "#lib/ipv6.js";
import { sameKey, type LeaseKeyName } from "./lease-codec.js";
import { admitLeases, type LeaseShape, type RejectedLease, type RejectKind } from "./peer-validation.js";
import { diffPeers, peerKey, type Peer, type PeerChange } from "./peers.js";
import type { LeaseListing, RegistryUpdate, StoredLease, SubnetRegistry } from "./registry.js";

/** Reconnect backoff for the watch: quick first retry, capped at 5 s (as flannel), ±20 % jitter. */
export const WATCH_RECONNECT_BACKOFF: BackoffPolicy = { initialMs: 100, maxMs: 5000, multiplier: 2, jitter: 0.2 };
/** After a store reset, peers absent from the new store are kept this long (nodes re-register within seconds). */
export const DEFAULT_STORE_RESET_GRACE_MS = 60_000;

export type WatcherEvent =
  | PeerChange
  | { readonly type: "own-removed"; readonly subnet: Cidr; readonly subnet6?: Cidr6 | undefined }
  /** Our key was written by someone (an echo of our own write, a repair to make, or another node taking it). */
  | { readonly type: "own-changed"; readonly lease: StoredLease }
  | {
      readonly type: "invalid";
      readonly subnet: Cidr;
      readonly subnet6?: Cidr6 | undefined;
      readonly kind: RejectKind;
      readonly reason: string;
      readonly publicIp: string | undefined;
    }
  | { readonly type: "store-reset"; readonly reason: string; readonly graceMs: number; readonly kept: number }
  | { readonly type: "store-reset-over"; readonly removed: number }
  | { readonly type: "synced"; readonly revision: string; readonly peers: number; readonly initial: boolean }
  | { readonly type: "live"; readonly revision: string }
  | {
      readonly type: "broken";
      readonly reason: "compacted" | "disconnected" | "cancelled" | "error";
      readonly error: unknown;
      readonly retryInMs: number;
    };

export interface PeerWatcherOptions {
  readonly registry: SubnetRegistry;
  readonly clock: Clock;
  readonly publicIp: string;
  /** This node's key right now (it changes when the keeper re-acquires). */
  readonly ownLease: () => LeaseKeyName | undefined;
  readonly ownVtepMac?: string | undefined;
  /** This node's BackendV6Data.VtepMAC, when it publishes one. */
  readonly ownVtepMac6?: string | undefined;
  /** The lease shapes accepted: the network this agent runs with (and, during a change, the new one). */
  readonly shapes: readonly LeaseShape[];
  readonly resetGraceMs?: number;
  readonly backoff?: BackoffPolicy;
  readonly random?: () => number;
}

type Broken = { reason: "compacted" | "disconnected" | "cancelled"; error: unknown };

export class PeerWatcher {
  readonly events = new Emitter<WatcherEvent>();
  /** Every lease under the prefix as last seen, by subnet key: peers are computed from all of them at once. */
  private readonly leases = new Map<string, StoredLease>();
  private readonly known = new Map<string, Peer>();
  private rejectedNow = new Map<string, RejectedLease>();
  /** Rejections already reported, by subnet key → mod revision + reason, so a resync does not repeat the warning. */
  private readonly reported = new Map<string, string>();
  private shapes: readonly LeaseShape[];
  private synced = false;
  private watchLive = false;
  private highestRevision = 0n;
  private clusterId: string | undefined;
  /** Epoch ms until which peers missing after a store reset are kept. */
  private graceUntil: number | undefined;
  private graceTimer: AbortController | undefined;
  private lastOwnRevision: string | undefined;
  private readonly backoff: Backoff;

  constructor(private readonly options: PeerWatcherOptions) {
    this.shapes = options.shapes;
    this.backoff = new Backoff(options.backoff ?? WATCH_RECONNECT_BACKOFF, options.random);
  }

  /** The current peer set (own lease excluded; peers kept through a store reset included). */
  peers(): ReadonlyMap<string, Peer> {
    return this.known;
  }

  /** Leases skipped, with why. */
  rejected(): ReadonlyMap<string, RejectedLease> {
    return this.rejectedNow;
  }

  /** While a store reset's grace period runs: until when (epoch ms). */
  get storeResetGraceUntil(): number | undefined {
    return this.graceUntil;
  }

  /** True after the first full listing. */
  get hasSynced(): boolean {
    return this.synced;
  }

  /** True while a watch stream is established. */
  get live(): boolean {
    return this.watchLive;
  }

  /** Accepts leases of these shapes from now on (the network config changed); re-evaluates every lease. */
  setShapes(shapes: readonly LeaseShape[]): void {
    this.shapes = shapes;
    this.recompute();
  }

  private ownKey(): string | undefined {
    const own = this.options.ownLease();
    return own === undefined ? undefined : peerKey(own.subnet, own.subnet6);
  }

  /** Peers from every lease known; during a grace period peers whose key is gone stay. Emits the difference. */
  private recompute(): void {
    const own = this.options.ownLease();
    const admission = admitLeases([...this.leases.values()], this.shapes, {
      publicIp: this.options.publicIp,
      subnet: own?.subnet,
      vtepMac: this.options.ownVtepMac,
      subnet6: own?.subnet6,
      vtepMac6: this.options.ownVtepMac6,
    });
    const next = new Map<string, Peer>(admission.peers.map((peer) => [peerKey(peer.subnet, peer.subnet6), peer]));
    if (this.graceUntil !== undefined) {
      for (const [key, peer] of this.known) if (!next.has(key) && !this.leases.has(key)) next.set(key, peer);
    }
    this.rejectedNow = new Map(admission.rejected.map((r) => [peerKey(r.subnet, r.subnet6), r]));
    for (const [key, rejected] of this.rejectedNow) {
      const mark = `${rejected.modRevision} ${rejected.reason}`;
      if (this.reported.get(key) === mark) continue;
      this.reported.set(key, mark);
      this.events.emit({
        type: "invalid",
        subnet: rejected.subnet,
        ...(rejected.subnet6 === undefined ? {} : { subnet6: rejected.subnet6 }),
        kind: rejected.kind,
        reason: rejected.reason,
        publicIp: rejected.publicIp,
      });
    }
    for (const key of this.reported.keys()) if (!this.rejectedNow.has(key)) this.reported.delete(key);
    for (const change of diffPeers(this.known, next)) {
      if (change.type === "removed") this.known.delete(peerKey(change.peer.subnet, change.peer.subnet6));
      else this.known.set(peerKey(change.peer.subnet, change.peer.subnet6), change.peer);
      this.events.emit(change);
    }
  }

  private noteOwn(lease: StoredLease): void {
    const own = this.options.ownLease();
    if (own === undefined || !sameKey(own, lease) || lease.modRevision === this.lastOwnRevision) return;
    this.lastOwnRevision = lease.modRevision;
    this.events.emit({ type: "own-changed", lease });
  }

  /** A store reset seen in a listing, or undefined. */
  private resetInListing(
    leases: readonly StoredLease[],
    revision: string,
    clusterId: string | undefined,
  ): string | undefined {
    if (!this.synced) return undefined;
    if (clusterId !== undefined && this.clusterId !== undefined && clusterId !== this.clusterId)
      return `etcd cluster ID changed (${this.clusterId} → ${clusterId})`;
    if (BigInt(revision) < this.highestRevision)
      return `etcd revision went backwards (${this.highestRevision} → ${revision})`;
    for (const lease of leases) {
      const before = this.leases.get(peerKey(lease.subnet, lease.subnet6));
      if (before !== undefined && BigInt(lease.modRevision) < BigInt(before.modRevision)) {
        return `the revision of ${formatCidr(lease.subnet)} went backwards (${before.modRevision} → ${lease.modRevision})`;
      }
    }
    const present = new Set(leases.map((l) => peerKey(l.subnet, l.subnet6)));
    if (this.vanishedAll((key) => !present.has(key))) return "every lease vanished at once";
    return undefined;
  }

  /** True when our own key and every peer's key (at least one) are gone. */
  private vanishedAll(gone: (key: string) => boolean): boolean {
    const own = this.ownKey();
    if (this.known.size === 0 || own === undefined || !this.leases.has(own)) return false;
    return gone(own) && [...this.known.keys()].every(gone);
  }

  private startGrace(reason: string, signal: AbortSignal): void {
    const graceMs = this.options.resetGraceMs ?? DEFAULT_STORE_RESET_GRACE_MS;
    this.graceTimer?.abort();
    const timer = new AbortController();
    this.graceTimer = timer;
    this.graceUntil = this.options.clock.now() + graceMs;
    this.events.emit({ type: "store-reset", reason, graceMs, kept: this.known.size });
    void this.options.clock.sleep(graceMs, AbortSignal.any([signal, timer.signal])).then(
      () => {
        this.graceUntil = undefined;
        this.graceTimer = undefined;
        const before = this.known.size;
        this.recompute();
        this.events.emit({ type: "store-reset-over", removed: Math.max(0, before - this.known.size) });
      },
      () => undefined,
    );
  }

  private applySnapshot(
    leases: readonly StoredLease[],
    revision: string,
    clusterId: string | undefined,
    signal: AbortSignal,
  ): void {
    const reset = this.resetInListing(leases, revision, clusterId);
    if (reset !== undefined) this.startGrace(reset, signal);
    if (reset !== undefined || BigInt(revision) > this.highestRevision) this.highestRevision = BigInt(revision);
    if (clusterId !== undefined) this.clusterId = clusterId;
    const own = this.options.ownLease();
    const ownKey = this.ownKey();
    this.leases.clear();
    for (const lease of leases) this.leases.set(peerKey(lease.subnet, lease.subnet6), lease);
    this.recompute();
    const ownNow = ownKey === undefined ? undefined : this.leases.get(ownKey);
    if (ownNow !== undefined) this.noteOwn(ownNow);
    else if (own !== undefined && this.synced) {
      this.lastOwnRevision = undefined;
      this.events.emit({ type: "own-removed", subnet: own.subnet, subnet6: own.subnet6 });
    }
  }

  private applyUpdates(updates: readonly RegistryUpdate[], revision: string, signal: AbortSignal): void {
    const deleted = new Set(updates.flatMap((u) => (u.type === "delete" ? [peerKey(u.subnet, u.subnet6)] : [])));
    if (deleted.size > 1 && this.vanishedAll((key) => deleted.has(key)))
      this.startGrace("every lease vanished at once", signal);
    if (BigInt(revision) > this.highestRevision) this.highestRevision = BigInt(revision);
    const own = this.options.ownLease();
    for (const update of updates) {
      if (update.type === "delete") {
        this.leases.delete(peerKey(update.subnet, update.subnet6));
        if (own !== undefined && sameKey(own, update)) {
          this.lastOwnRevision = undefined;
          this.events.emit({ type: "own-removed", subnet: update.subnet, subnet6: update.subnet6 });
        }
      } else {
        this.leases.set(peerKey(update.lease.subnet, update.lease.subnet6), update.lease);
        this.noteOwn(update.lease);
      }
    }
    this.recompute();
  }

  /** Lists and watches until the signal aborts. Never throws for etcd trouble: it reports and retries. */
  async run(signal: AbortSignal): Promise<void> {
    const { registry, clock } = this.options;
    let listedAt = "";
    await listAndWatch<LeaseListing, Broken["reason"]>(
      {
        clock,
        backoff: this.backoff,
        list: () => registry.listLeases(),
        applyListing: (listing) => {
          listedAt = listing.revision;
          this.applySnapshot(listing.leases, listing.revision, listing.clusterId, signal);
          this.events.emit({
            type: "synced",
            revision: listing.revision,
            peers: this.known.size,
            initial: !this.synced,
          });
          this.synced = true;
        },
        watch: (fromRevision, handlers) =>
          registry.watchLeases(fromRevision, {
            updates: (updates, at) => {
              this.applyUpdates(updates, at, signal);
            },
            ...handlers,
          }),
        onLive: () => {
          this.watchLive = true;
          this.events.emit({ type: "live", revision: listedAt });
        },
        onBroken: (reason, error, retryInMs) => {
          this.watchLive = false;
          this.events.emit({ type: "broken", reason, error, retryInMs });
        },
      },
      signal,
    );
    this.watchLive = false;
    this.graceTimer?.abort();
  }
}
