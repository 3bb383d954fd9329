// The key-value PORT the service registry is built on: gets, prefix listings, transactions and prefix watches, in
// plain data. One real adapter (etcd-kv-store.ts); tests use the in-memory fake of agent/test/support/memory-kv.ts.
// Revisions are etcd's, as decimal strings.

export interface KvEntry {
  readonly key: string;
  readonly value: string;
  readonly modRevision: string;
  /** The etcd lease the key hangs on; undefined without one. */
  readonly lease: string | undefined;
}

export interface KvListing {
  readonly entries: readonly KvEntry[];
  /** The store revision the listing was read at; watch from revision + 1. */
  readonly revision: string;
}

/** A condition of a transaction: the key's version (0 = absent) or mod revision equals a value. */
export type KvCompare =
  { readonly key: string; readonly absent: true } | { readonly key: string; readonly modRevision: string };

export type KvOp =
  { readonly put: string; readonly value: string; readonly lease?: string | undefined } | { readonly delete: string };

export type KvChange =
  { readonly type: "put"; readonly entry: KvEntry } | { readonly type: "delete"; readonly key: string };

export interface KvWatchSink {
  /** Changes of one revision, in store order. */
  changes(changes: readonly KvChange[], revision: string): void;
  /** The watch is established (again). */
  live(): void;
  /** The watch ended (compacted, disconnected, cancelled by etcd); not called after cancel(). */
  broken(reason: "compacted" | "disconnected" | "cancelled", error: unknown): void;
}

export interface KvStore {
  get(key: string): Promise<KvEntry | undefined>;
  /** Every key under `prefix` but those under the `skip` sub-prefixes, at one revision. */
  list(prefix: string, skip?: readonly string[]): Promise<KvListing>;
  /** All compares hold → all ops, atomically; else nothing. True when applied. */
  commit(compares: readonly KvCompare[], ops: readonly KvOp[]): Promise<boolean>;
  watch(prefix: string, fromRevision: string, sink: KvWatchSink): Promise<{ cancel(): Promise<void> }>;
  close(): void;
}
