// The peer watcher: list the subnets prefix, then watch from the listed revision. Whenever the watch breaks
// (history compacted, connection lost, etcd cancelled it) it backs off, lists again and emits only the
// difference, so no peer is missed and none is left stale. Own-lease changes go to the keeper as their own events.
import { isAborted } from "../../../lib/src/abort.js";
import { Backoff, type BackoffPolicy } from "../../../lib/src/backoff.js";
import type { Clock } from "../../../lib/src/clock.js";
import { Emitter } from "../../../lib/src/emitter.js";
import { sameCidr, type Cidr } from "../../../lib/src/ipv4.js";
import { classifyLease, diffPeers, peerKey, type Ownership, type Peer, type PeerChange } from "./peers.js";
import type { RegistryUpdate, StoredLease, SubnetRegistry } from "./registry.js";

/** Reconnect backoff for the watch: quick first retry, capped at 5 s (as flannel), ±20 % jitter. */
export const WATCH_RECONNECT_BACKOFF: BackoffPolicy = { initialMs: 100, maxMs: 5000, multiplier: 2, jitter: 0.2 };

export type WatcherEvent =
  | PeerChange
  | { readonly type: "own-removed"; readonly subnet: Cidr }
  | { readonly type: "own-taken"; readonly subnet: Cidr; readonly publicIp: string }
  | { readonly type: "invalid"; readonly subnet: Cidr; readonly reason: string }
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
  /** This node's subnet right now (it changes when the keeper re-acquires). */
  readonly ownSubnet: () => Cidr | undefined;
  readonly backoff?: BackoffPolicy;
  readonly random?: () => number;
}

type Broken = { reason: "compacted" | "disconnected" | "cancelled"; error: unknown };

export class PeerWatcher {
  readonly events = new Emitter<WatcherEvent>();
  private readonly known = new Map<string, Peer>();
  /** Invalid leases already reported, by subnet key → mod revision, so a resync does not repeat the warning. */
  private readonly reportedInvalid = new Map<string, string>();
  private synced = false;
  private watchLive = false;
  private readonly backoff: Backoff;

  constructor(private readonly options: PeerWatcherOptions) {
    this.backoff = new Backoff(options.backoff ?? WATCH_RECONNECT_BACKOFF, options.random);
  }

  /** The current peer set (own lease excluded). */
  peers(): ReadonlyMap<string, Peer> {
    return this.known;
  }

  /** True after the first full listing. */
  get hasSynced(): boolean {
    return this.synced;
  }

  /** True while a watch stream is established. */
  get live(): boolean {
    return this.watchLive;
  }

  private own(): Ownership {
    return { publicIp: this.options.publicIp, subnet: this.options.ownSubnet() };
  }

  /** Classifies one lease; reports invalid ones once per revision. Returns the peer, or undefined. */
  private admit(lease: StoredLease): Peer | undefined {
    const verdict = classifyLease(lease, this.own());
    const key = peerKey(lease.subnet);
    if (verdict.kind === "invalid") {
      if (this.reportedInvalid.get(key) !== lease.modRevision) {
        this.reportedInvalid.set(key, lease.modRevision);
        this.events.emit({ type: "invalid", subnet: lease.subnet, reason: verdict.reason });
      }
      return undefined;
    }
    this.reportedInvalid.delete(key);
    if (verdict.kind === "own") {
      const ownSubnet = this.own().subnet;
      if (
        ownSubnet !== undefined &&
        sameCidr(ownSubnet, lease.subnet) &&
        lease.attrs.ok &&
        lease.attrs.value.publicIp !== this.options.publicIp
      ) {
        this.events.emit({ type: "own-taken", subnet: lease.subnet, publicIp: lease.attrs.value.publicIp });
      }
      return undefined;
    }
    return verdict.peer;
  }

  private applyChanges(changes: readonly PeerChange[]): void {
    for (const change of changes) {
      if (change.type === "removed") this.known.delete(peerKey(change.peer.subnet));
      else this.known.set(peerKey(change.peer.subnet), change.peer);
      this.events.emit(change);
    }
  }

  private applySnapshot(leases: readonly StoredLease[]): void {
    const next = new Map<string, Peer>();
    let ownPresent = false;
    const ownSubnet = this.own().subnet;
    for (const lease of leases) {
      if (ownSubnet !== undefined && sameCidr(lease.subnet, ownSubnet)) ownPresent = true;
      const peer = this.admit(lease);
      if (peer !== undefined) next.set(peerKey(peer.subnet), peer);
    }
    const present = new Set(leases.map((lease) => peerKey(lease.subnet)));
    for (const key of this.reportedInvalid.keys()) if (!present.has(key)) this.reportedInvalid.delete(key);
    this.applyChanges(diffPeers(this.known, next));
    if (ownSubnet !== undefined && !ownPresent && this.synced)
      this.events.emit({ type: "own-removed", subnet: ownSubnet });
  }

  private applyUpdates(updates: readonly RegistryUpdate[]): void {
    for (const update of updates) {
      if (update.type === "delete") {
        const key = peerKey(update.subnet);
        this.reportedInvalid.delete(key);
        const ownSubnet = this.own().subnet;
        if (ownSubnet !== undefined && sameCidr(ownSubnet, update.subnet)) {
          this.events.emit({ type: "own-removed", subnet: update.subnet });
          continue;
        }
        const peer = this.known.get(key);
        if (peer !== undefined) this.applyChanges([{ type: "removed", peer }]);
        continue;
      }
      const key = peerKey(update.lease.subnet);
      const peer = this.admit(update.lease);
      const previous = this.known.get(key);
      if (peer === undefined) {
        // Turned invalid or became ours: it is no longer a peer.
        if (previous !== undefined) this.applyChanges([{ type: "removed", peer: previous }]);
      } else {
        this.applyChanges(
          diffPeers(previous === undefined ? new Map() : new Map([[key, previous]]), new Map([[key, peer]])),
        );
      }
    }
  }

  /** Lists and watches until the signal aborts. Never throws for etcd trouble: it reports and retries. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let outcome: Broken | { reason: "error"; error: unknown } | undefined;
      try {
        const listing = await this.options.registry.listLeases();
        if (isAborted(signal)) break;
        this.applySnapshot(listing.leases);
        this.events.emit({ type: "synced", revision: listing.revision, peers: this.known.size, initial: !this.synced });
        this.synced = true;
        outcome = await this.watchFrom(listing.revision, signal);
      } catch (error) {
        outcome = { reason: "error", error };
      }
      this.watchLive = false;
      if (isAborted(signal) || outcome === undefined) break;
      const retryInMs = this.backoff.next();
      this.events.emit({ type: "broken", reason: outcome.reason, error: outcome.error, retryInMs });
      await this.options.clock.sleep(retryInMs, signal).catch(() => undefined);
    }
  }

  /** Watches from just after `revision`; resolves when the watch breaks (or undefined when aborted). */
  private async watchFrom(revision: string, signal: AbortSignal): Promise<Broken | undefined> {
    let settle: (value: Broken | undefined) => void = () => undefined;
    const ended = new Promise<Broken | undefined>((resolve) => {
      settle = resolve;
    });
    const onAbort = (): void => {
      settle(undefined);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    const watch = await this.options.registry.watchLeases((BigInt(revision) + 1n).toString(), {
      updates: (updates) => {
        this.applyUpdates(updates);
      },
      live: () => {
        this.watchLive = true;
        this.backoff.reset();
        this.events.emit({ type: "live", revision });
      },
      broken: (reason, error) => {
        settle({ reason, error });
      },
    });
    try {
      return await ended;
    } finally {
      signal.removeEventListener("abort", onAbort);
      await watch.cancel();
    }
  }
}
