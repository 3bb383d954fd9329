// What the watcher knows about other nodes, and the pure diff between two views of them.
import { formatCidr, sameCidr, type Cidr } from "#lib/ipv4.js";
import { formatCidr6, sameCidr6, type Cidr6 } from "#lib/ipv6.js";
import { sameAttrs, type LeaseAttrs } from "./lease-codec.js";

export interface Peer {
  readonly subnet: Cidr;
  /** The IPv6 subnet of a dual-stack lease. */
  readonly subnet6?: Cidr6 | undefined;
  readonly attrs: LeaseAttrs;
  /** A reservation: no TTL. */
  readonly reserved: boolean;
}

export type PeerChange =
  | { readonly type: "added"; readonly peer: Peer }
  | { readonly type: "changed"; readonly peer: Peer; readonly previous: Peer }
  | { readonly type: "removed"; readonly peer: Peer };

/** A lease's identity: "172.30.5.0/24", or with the IPv6 half of a dual-stack key "172.30.5.0/24&fd30:0:0:5::/64". */
export function peerKey(subnet: Cidr, subnet6?: Cidr6): string {
  return subnet6 === undefined ? formatCidr(subnet) : `${formatCidr(subnet)}&${formatCidr6(subnet6)}`;
}

function sameSubnet6(a: Cidr6 | undefined, b: Cidr6 | undefined): boolean {
  return a === undefined || b === undefined ? a === b : sameCidr6(a, b);
}

export function samePeer(a: Peer, b: Peer): boolean {
  return (
    sameCidr(a.subnet, b.subnet) &&
    sameSubnet6(a.subnet6, b.subnet6) &&
    a.reserved === b.reserved &&
    sameAttrs(a.attrs, b.attrs)
  );
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
