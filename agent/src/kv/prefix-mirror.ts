// A prefix of the store mirrored in memory: list, then watch from the listed revision. Whenever the watch breaks
// (compaction, a lost connection, etcd cancelling it) it backs off, lists again and reports only the difference,
// so no change is missed and nothing stale is kept. Consumers see complete snapshots only: nothing before the first
// listing, and each batch of changes leaves the mirror equal to one store revision.
import { Backoff, type BackoffPolicy } from "#lib/backoff.js";
import type { Clock } from "#lib/clock.js";
import { Emitter } from "#lib/emitter.js";
import { listAndWatch } from "#lib/list-watch.js";
import type { KvChange, KvEntry, KvStore } from "./kv-store.js";

/** Reconnect backoff: quick first retry, capped at 5 s, ±20 % jitter (as the peer watch). */
export const MIRROR_BACKOFF: BackoffPolicy = { initialMs: 100, maxMs: 5000, multiplier: 2, jitter: 0.2 };

export type MirrorEvent =
  | {
      readonly type: "changes";
      readonly changes: readonly KvChange[];
      readonly revision: string;
      readonly resync: boolean;
    }
  | { readonly type: "synced"; readonly revision: string; readonly entries: number; readonly initial: boolean }
  | { readonly type: "live" }
  | { readonly type: "broken"; readonly reason: string; readonly error: unknown; readonly retryInMs: number };

export interface PrefixMirrorOptions {
  readonly kv: KvStore;
  readonly prefix: string;
  /** Sub-prefixes left out: neither listed nor reported when the watch sees them. */
  readonly skip?: readonly string[];
  readonly clock: Clock;
  readonly backoff?: BackoffPolicy;
  readonly random?: () => number;
}

export class PrefixMirror {
  readonly events = new Emitter<MirrorEvent>();
  /** Key → its mod revision: enough to tell a re-listing's difference; the values live with the consumers. */
  private readonly known = new Map<string, string>();
  private syncedOnce = false;
  private watchLive = false;
  private readonly backoff: Backoff;

  constructor(private readonly options: PrefixMirrorOptions) {
    this.backoff = new Backoff(options.backoff ?? MIRROR_BACKOFF, options.random);
  }

  /** Every mirrored key with its mod revision. */
  revisions(): ReadonlyMap<string, string> {
    return this.known;
  }

  /** True after the first complete listing. */
  get synced(): boolean {
    return this.syncedOnce;
  }

  get live(): boolean {
    return this.watchLive;
  }

  private applySnapshot(entries: readonly KvEntry[], revision: string): void {
    const changes: KvChange[] = [];
    const present = new Set<string>();
    for (const entry of entries) {
      present.add(entry.key);
      if (this.known.get(entry.key) === entry.modRevision) continue;
      this.known.set(entry.key, entry.modRevision);
      changes.push({ type: "put", entry });
    }
    for (const key of [...this.known.keys()]) {
      if (present.has(key)) continue;
      this.known.delete(key);
      changes.push({ type: "delete", key });
    }
    if (changes.length > 0 || !this.syncedOnce)
      this.events.emit({ type: "changes", changes, revision, resync: this.syncedOnce });
  }

  private skipped(key: string): boolean {
    return (this.options.skip ?? []).some((sub) => key.startsWith(sub));
  }

  private applyChanges(all: readonly KvChange[], revision: string): void {
    const changes = all.filter((c) => !this.skipped(c.type === "put" ? c.entry.key : c.key));
    if (changes.length === 0) return;
    for (const change of changes) {
      if (change.type === "put") this.known.set(change.entry.key, change.entry.modRevision);
      else this.known.delete(change.key);
    }
    this.events.emit({ type: "changes", changes, revision, resync: false });
  }

  /** Lists and watches until the signal aborts; etcd trouble is reported and retried, never thrown. */
  async run(signal: AbortSignal): Promise<void> {
    const { kv, prefix, clock } = this.options;
    await listAndWatch(
      {
        clock,
        backoff: this.backoff,
        list: () => kv.list(prefix, this.options.skip),
        applyListing: (listing) => {
          this.applySnapshot(listing.entries, listing.revision);
          this.events.emit({
            type: "synced",
            revision: listing.revision,
            entries: this.known.size,
            initial: !this.syncedOnce,
          });
          this.syncedOnce = true;
        },
        watch: (fromRevision, handlers) =>
          kv.watch(prefix, fromRevision, {
            changes: (changes, at) => {
              this.applyChanges(changes, at);
            },
            ...handlers,
          }),
        onLive: () => {
          this.watchLive = true;
          this.events.emit({ type: "live" });
        },
        onBroken: (reason, error, retryInMs) => {
          this.watchLive = false;
          this.events.emit({ type: "broken", reason, error, retryInMs });
        },
      },
      signal,
    );
    this.watchLive = false;
  }
}
