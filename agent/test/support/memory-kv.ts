// An in-memory KvStore with etcd's semantics where the registry relies on them: revisions, compare-and-swap
// transactions, prefix listings and a revisioned watch (with compaction), plus fault injection.
import { TrellisError } from "#lib/errors.js";
import type { KvChange, KvCompare, KvEntry, KvListing, KvOp, KvStore, KvWatchSink } from "../../src/kv/kv-store.js";

export class MemoryKv implements KvStore {
  readonly data = new Map<string, KvEntry>();
  private revision = 1;
  private history: { revision: number; change: KvChange }[] = [];
  private compactedAt = 0;
  private readonly watches = new Set<{ prefix: string; sink: KvWatchSink }>();
  /** Every call fails as if etcd were down. */
  failing = false;
  /** Transactions applied (for tests counting writes). */
  commits = 0;

  private check(call: string): void {
    if (this.failing) throw new TrellisError("ETCD_UNAVAILABLE", `etcd is unreachable (fake): ${call}`);
  }

  get(key: string): Promise<KvEntry | undefined> {
    this.check(`get ${key}`);
    return Promise.resolve(this.data.get(key));
  }

  list(prefix: string, skip: readonly string[] = []): Promise<KvListing> {
    this.check(`list ${prefix}`);
    const entries = [...this.data.values()]
      .filter((e) => e.key.startsWith(prefix) && !skip.some((s) => e.key.startsWith(s)))
      .sort((a, b) => a.key.localeCompare(b.key));
    return Promise.resolve({ entries, revision: String(this.revision) });
  }

  commit(compares: readonly KvCompare[], ops: readonly KvOp[]): Promise<boolean> {
    this.check("commit");
    for (const c of compares) {
      const entry = this.data.get(c.key);
      if ("absent" in c ? entry !== undefined : entry?.modRevision !== c.modRevision) return Promise.resolve(false);
    }
    this.revision += 1;
    this.commits += 1;
    const changes: KvChange[] = [];
    for (const op of ops) {
      if ("delete" in op) {
        if (!this.data.delete(op.delete)) continue;
        changes.push({ type: "delete", key: op.delete });
      } else {
        const entry: KvEntry = { key: op.put, value: op.value, modRevision: String(this.revision), lease: op.lease };
        this.data.set(op.put, entry);
        changes.push({ type: "put", entry });
      }
    }
    for (const change of changes) this.history.push({ revision: this.revision, change });
    this.publish(changes);
    return Promise.resolve(true);
  }

  /** Writes a key directly (a forged or hand-made value), as one revision. */
  put(key: string, value: string): void {
    void this.commit([], [{ put: key, value }]);
  }

  private publish(changes: readonly KvChange[]): void {
    for (const watch of this.watches) {
      const mine = changes.filter((c) => (c.type === "put" ? c.entry.key : c.key).startsWith(watch.prefix));
      if (mine.length > 0) watch.sink.changes(mine, String(this.revision));
    }
  }

  watch(prefix: string, fromRevision: string, sink: KvWatchSink): Promise<{ cancel(): Promise<void> }> {
    this.check(`watch ${prefix}`);
    const from = Number(fromRevision);
    if (from <= this.compactedAt) {
      queueMicrotask(() => {
        sink.broken("compacted", new TrellisError("ETCD_FAILED", "required revision has been compacted"));
      });
      return Promise.resolve({ cancel: () => Promise.resolve() });
    }
    const watch = { prefix, sink };
    queueMicrotask(() => {
      sink.live();
      const missed = this.history.filter(
        (h) => h.revision >= from && (h.change.type === "put" ? h.change.entry.key : h.change.key).startsWith(prefix),
      );
      for (const h of missed) sink.changes([h.change], String(h.revision));
      this.watches.add(watch);
    });
    return Promise.resolve({
      cancel: () => {
        this.watches.delete(watch);
        return Promise.resolve();
      },
    });
  }

  /** Drops history up to now and breaks every watch, as a compaction plus a cancelled watch would. */
  compact(): void {
    this.compactedAt = this.revision;
    this.history = [];
    for (const watch of [...this.watches]) {
      this.watches.delete(watch);
      watch.sink.broken("compacted", new TrellisError("ETCD_FAILED", "compacted"));
    }
  }

  close(): void {
    this.watches.clear();
  }
}
