// The subnet registry port: everything the lease layer needs from etcd, in plain data. One real adapter
// (etcd-registry.ts); tests of the keeper and watcher use an in-memory fake implementing the same interface.
import type { Cidr } from "#lib/ipv4.js";
import type { Cidr6 } from "#lib/ipv6.js";
import type { Decoded, LeaseAttrs } from "./lease-codec.js";

export interface StoredLease {
  readonly subnet: Cidr;
  /** The IPv6 half of a dual-stack key (flannel's "<v4>-<len>&<v6>-<len>"). */
  readonly subnet6?: Cidr6 | undefined;
  /** The decoded value, or why it could not be decoded (the subnet is still taken). */
  readonly attrs: Decoded<LeaseAttrs>;
  /** The etcd lease attached to the key; undefined for a reservation (a key without TTL). */
  readonly leaseId: string | undefined;
  readonly modRevision: string;
  /** The revision that created the key (etcd's create_revision): which of two conflicting leases came first. */
  readonly createRevision?: string | undefined;
}

export interface LeaseListing {
  readonly leases: readonly StoredLease[];
  /** The store revision the listing was read at; watch from revision + 1. */
  readonly revision: string;
  /** The store's cluster ID: a new one means etcd was rebuilt (a store reset). */
  readonly clusterId?: string | undefined;
}

export type RegistryUpdate =
  | { readonly type: "put"; readonly lease: StoredLease }
  | { readonly type: "delete"; readonly subnet: Cidr; readonly subnet6?: Cidr6 | undefined };

export interface WatchSink {
  /** A batch of changes, in store order, all at one revision. */
  updates(updates: readonly RegistryUpdate[], revision: string): void;
  /** The watch is established (again) and live. */
  live(): void;
  /** The watch ended: the history was compacted, the connection dropped, or etcd cancelled it. Not called after cancel(). */
  broken(reason: "compacted" | "disconnected" | "cancelled", error: unknown): void;
}

export interface ConfigWatchSink {
  /** The config key was written (text) or deleted (undefined), at this revision. */
  changed(text: string | undefined, revision: string): void;
  live(): void;
  /** As WatchSink.broken. */
  broken(reason: "compacted" | "disconnected" | "cancelled", error: unknown): void;
}

export interface RegistryWatch {
  cancel(): Promise<void>;
}

export interface SubnetRegistry {
  getNetworkConfig(): Promise<string | undefined>;
  putNetworkConfig(text: string): Promise<void>;
  /** The config's text (undefined when absent) and the store revision it was read at. */
  readNetworkConfig(): Promise<{ readonly text: string | undefined; readonly revision: string }>;
  /** Watches <prefix>/config from a revision (exclusive of earlier history). */
  watchNetworkConfig(fromRevision: string, sink: ConfigWatchSink): Promise<RegistryWatch>;
  /**
   * Every key under the subnets prefix. "serializable" may read a member that lags behind — cheaper, and enough
   * when a transaction guards what is done with the answer (subnet choice); the default is linearizable.
   */
  listLeases(consistency?: "linearizable" | "serializable"): Promise<LeaseListing>;
  /** Remaining seconds of an etcd lease, undefined when it no longer exists. */
  timeToLive(leaseId: string): Promise<number | undefined>;
  /** A new etcd lease (TTL in seconds) to attach keys to; it expires unless kept alive. */
  grantLease(ttlSeconds: number): Promise<string>;
  /**
   * The key is the subnet's, or the dual-stack pair's when `subnet6` is given (for every write below).
   * Creates the subnet key if it does not exist (one transaction), attached to the given etcd lease, or without
   * one: a reservation. False when the key exists.
   */
  createLease(subnet: Cidr, attrs: LeaseAttrs, leaseId: string | undefined, subnet6?: Cidr6): Promise<boolean>;
  /** Rewrites the key if it is unchanged since modRevision (one transaction), attached to leaseId or to none. */
  replaceLease(
    subnet: Cidr,
    attrs: LeaseAttrs,
    modRevision: string,
    leaseId: string | undefined,
    subnet6?: Cidr6,
  ): Promise<boolean>;
  /** Deletes the key if it is unchanged since modRevision (or unconditionally without one); true if deleted. */
  deleteLease(subnet: Cidr, modRevision?: string, subnet6?: Cidr6): Promise<boolean>;
  /** Extends an etcd lease; the new TTL in seconds, or undefined when the lease is gone (expired/revoked). */
  keepAlive(leaseId: string): Promise<number | undefined>;
  revoke(leaseId: string): Promise<void>;
  /** Watches the subnets prefix from a revision (exclusive of earlier history). */
  watchLeases(fromRevision: string, sink: WatchSink): Promise<RegistryWatch>;
  close(): void;
}
