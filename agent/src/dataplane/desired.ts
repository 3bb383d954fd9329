// The kernel state this node should have, computed from the lease, the peers and the underlay by the backend the
// network config names: one plane per address family the node runs. Pure: the reconciler compares each plane with
// a dump of what the kernel has of that family and applies the difference.
import { formatCidr } from "#lib/ipv4.js";
import { formatCidr6 } from "#lib/ipv6.js";
import type { FdbSpec, IpFamily, NeighborSpec, RouteSpec } from "#lib/netlink/kernel.js";
import type { Peer } from "../lease/peers.js";
import type { Backend, DeviceSpec, NodeContext, OwnLease, PlaneLayout } from "./backends/backend.js";
import { routeKey } from "./marks.js";
import type { UnderlayLink } from "./underlay.js";

export interface SkippedPeer {
  readonly family: IpFamily;
  /** The subnet of that family ("172.30.9.0/24", "fd30:0:0:9::/64"; the IPv4 one for a peer without an IPv6 subnet). */
  readonly subnet: string;
  /** The public IP the plane would use (PublicIPv6 where the IPv6 plane tunnels to it). */
  readonly publicIp: string;
  readonly reason: string;
}

export interface DesiredState {
  readonly family: IpFamily;
  /** The plane's own device, if it has one. */
  readonly device: DeviceSpec | undefined;
  /** The node's address on the device holding this plane's entries (its own, or the one it shares). */
  readonly address: string | undefined;
  /** Keyed by "dst/len". */
  readonly routes: ReadonlyMap<string, RouteSpec>;
  /** Keyed by peer IP. Empty without a device. */
  readonly neighbors: ReadonlyMap<string, NeighborSpec>;
  /** Keyed by MAC. Held by the plane that owns the device (a plane sharing another's device has none). */
  readonly fdb: ReadonlyMap<string, FdbSpec>;
  readonly skipped: readonly SkippedPeer[];
}

export interface DesiredInput {
  /** The network config's backend (backends/registry.ts). */
  readonly backend: Backend;
  readonly deviceName: string;
  /** The IPv6 plane's device name (flannel-v6.<VNI>). */
  readonly device6Name?: string | undefined;
  readonly underlay: UnderlayLink;
  readonly own: OwnLease;
  readonly peers: Iterable<Peer>;
  /** Index of the device holding the plane's entries when it exists (neighbour and FDB entries hang on it). */
  readonly deviceIndex: number | undefined;
  /** The plane; default 4. */
  readonly family?: IpFamily | undefined;
  /** The planes the node runs; default 4, and 6 when the lease has an IPv6 subnet. */
  readonly families?: readonly IpFamily[] | undefined;
}

/** The planes a node with this lease runs: IPv4 unless switched off, IPv6 with an IPv6 subnet. */
export function planeFamilies(own: OwnLease, enableIPv4 = true): IpFamily[] {
  return [...(enableIPv4 ? [4 as const] : []), ...(own.subnet6 === undefined ? [] : [6 as const])];
}

export function nodeContext(input: Omit<DesiredInput, "backend" | "peers" | "deviceIndex" | "family">): NodeContext {
  return {
    deviceName: input.deviceName,
    device6Name: input.device6Name,
    underlay: input.underlay,
    own: input.own,
    families: input.families ?? planeFamilies(input.own),
  };
}

/** One plane's desired state. */
export function desiredState(input: DesiredInput): DesiredState {
  const node = nodeContext(input);
  const family = input.family ?? 4;
  return planeState(input.backend, node, input.backend.plane(family, node), input.peers, input.deviceIndex);
}

function planeState(
  backend: Backend,
  node: NodeContext,
  layout: PlaneLayout,
  peers: Iterable<Peer>,
  deviceIndex: number | undefined,
): DesiredState {
  const { family } = layout;
  const routes = new Map<string, RouteSpec>();
  const neighbors = new Map<string, NeighborSpec>();
  const fdb = new Map<string, FdbSpec>();
  const skipped: SkippedPeer[] = [];
  for (const peer of peers) {
    const { backendType } = peer.attrs;
    const entries =
      backendType !== undefined && backendType !== backend.type
        ? { skip: `peer runs backend ${backendType}, this network uses ${backend.type}` }
        : backend.peerEntries(family, peer, node, deviceIndex);
    if ("skip" in entries) {
      const subnet = family === 6 && peer.subnet6 !== undefined ? formatCidr6(peer.subnet6) : formatCidr(peer.subnet);
      const publicIp = family === 6 ? (peer.attrs.publicIpv6 ?? peer.attrs.publicIp) : peer.attrs.publicIp;
      skipped.push({ family, subnet, publicIp, reason: entries.skip });
      continue;
    }
    routes.set(routeKey(entries.route), entries.route);
    if (entries.neighbor !== undefined) neighbors.set(entries.neighbor.ip, entries.neighbor);
    if (entries.fdb !== undefined) fdb.set(entries.fdb.mac, entries.fdb);
  }
  return { family, device: layout.device, address: layout.address, routes, neighbors, fdb, skipped };
}

/**
 * Every plane's desired state, given the index of each plane's device (its own, or the one it shares). The FDB
 * entries of a plane that shares another's device are that device's: they move to the plane owning it, so both
 * planes never disagree about one entry.
 */
export function desiredPlanes(
  backend: Backend,
  node: NodeContext,
  layouts: readonly PlaneLayout[],
  peers: readonly Peer[],
  deviceIndices: ReadonlyMap<IpFamily, number | undefined>,
): DesiredState[] {
  const states = layouts.map((layout) =>
    planeState(backend, node, layout, peers, deviceIndices.get(layout.sharesDeviceOf ?? layout.family)),
  );
  return states.map((state, i) => {
    const layout = layouts[i];
    if (layout?.sharesDeviceOf !== undefined) return { ...state, fdb: new Map() };
    const guests = states.filter((_, j) => layouts[j]?.sharesDeviceOf === state.family);
    if (guests.length === 0) return state;
    const fdb = new Map(state.fdb);
    for (const guest of guests) for (const [mac, entry] of guest.fdb) if (!fdb.has(mac)) fdb.set(mac, entry);
    return { ...state, fdb };
  });
}
