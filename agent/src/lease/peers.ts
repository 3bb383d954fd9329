// What the watcher knows about other nodes, and the pure diff between two views of them.
import { formatCidr, sameCidr, type Cidr } from "../../../lib/src/ipv4.js";
import { sameAttrs, type LeaseAttrs } from "./lease-codec.js";
import type { StoredLease } from "./registry.js";

export interface Peer {
  readonly subnet: Cidr;
  readonly attrs: LeaseAttrs;
  /** A reservation: no TTL. */
  readonly reserved: boolean;
}

export type PeerChange =
  | { readonly type: "added"; readonly peer: Peer }
  | { readonly type: "changed"; readonly peer: Peer; readonly previous: Peer }
  | { readonly type: "removed"; readonly peer: Peer };

export type LeaseClass =
  | { readonly kind: "own" }
  | { readonly kind: "invalid"; readonly reason: string }
  | { readonly kind: "peer"; readonly peer: Peer };

export interface Ownership {
  readonly publicIp: string;
  readonly subnet: Cidr | undefined;
}

/**
 * A lease is ours when it is our current subnet or names our public IP (our own write can be seen by the watch
 * before the keeper records it; a lease naming our IP is never a route target anyway).
 */
export function classifyLease(lease: StoredLease, own: Ownership): LeaseClass {
  if (own.subnet !== undefined && sameCidr(lease.subnet, own.subnet)) return { kind: "own" };
  if (!lease.attrs.ok) return { kind: "invalid", reason: lease.attrs.reason };
  if (lease.attrs.value.publicIp === own.publicIp) return { kind: "own" };
  return {
    kind: "peer",
    peer: { subnet: lease.subnet, attrs: lease.attrs.value, reserved: lease.leaseId === undefined },
  };
}

export function peerKey(subnet: Cidr): string {
  return formatCidr(subnet);
}

export function samePeer(a: Peer, b: Peer): boolean {
  return sameCidr(a.subnet, b.subnet) && a.reserved === b.reserved && sameAttrs(a.attrs, b.attrs);
}

/** The changes that turn `known` into `next` (both keyed by peerKey), removals first. */
export function diffPeers(known: ReadonlyMap<string, Peer>, next: ReadonlyMap<string, Peer>): PeerChange[] {
  const changes: PeerChange[] = [];
  for (const [key, peer] of known) {
    if (!next.has(key)) changes.push({ type: "removed", peer });
  }
  for (const [key, peer] of next) {
    const previous = known.get(key);
    if (previous === undefined) changes.push({ type: "added", peer });
    else if (!samePeer(previous, peer)) changes.push({ type: "changed", peer, previous });
  }
  return changes;
}
