// The kernel state this node should have, computed from the lease, the peers and the underlay. Pure: the
// reconciler compares it with a dump of what the kernel has and applies the difference.
import { containsIp, formatCidr, formatIpv4, parseCidr, parseIpv4, type Cidr } from "../../../lib/src/ipv4.js";
import type { FdbSpec, NeighborSpec, RouteSpec } from "../../../lib/src/netlink/kernel.js";
import type { BackendConfig } from "../config/network-config.js";
import type { Peer } from "../lease/peers.js";

/** Route protocol number on every route we install: how we recognise ours (and never touch anyone else's). */
export const TRELLIS_ROUTE_PROTOCOL = 145;

export interface UnderlayLink {
  readonly name: string;
  readonly index: number;
  readonly mtu: number;
  readonly localIp: string;
  /** The underlay's connected prefixes ("10.42.0.11/24"): peers inside them are directly reachable. */
  readonly addresses: readonly string[];
}

export interface OwnLease {
  readonly subnet: Cidr;
  readonly vtepMac?: string | undefined;
}

export interface DesiredDevice {
  readonly name: string;
  readonly vni: number;
  readonly port: number;
  readonly local: string;
  readonly underlayIndex: number;
  readonly mtu: number;
  readonly mac: string;
  /** `<subnet>.0/32` */
  readonly address: string;
}

export interface SkippedPeer {
  readonly subnet: Cidr;
  readonly publicIp: string;
  readonly reason: string;
}

export interface DesiredState {
  readonly device: DesiredDevice | undefined;
  /** Keyed by "dst/len". */
  readonly routes: ReadonlyMap<string, RouteSpec>;
  /** Keyed by peer IP. Empty without a device. */
  readonly neighbors: ReadonlyMap<string, NeighborSpec>;
  /** Keyed by MAC. */
  readonly fdb: ReadonlyMap<string, FdbSpec>;
  readonly skipped: readonly SkippedPeer[];
}

export interface DesiredInput {
  readonly backend: BackendConfig;
  readonly deviceName: string;
  readonly underlay: UnderlayLink;
  readonly own: OwnLease;
  readonly peers: Iterable<Peer>;
  /** Index of the vxlan device when it exists (neighbour and FDB entries hang on it). */
  readonly deviceIndex: number | undefined;
}

export function defaultDeviceName(vni: number): string {
  return `flannel.${vni}`;
}

export function routeKey(route: { dst: string; prefixLen: number }): string {
  return `${route.dst}/${route.prefixLen}`;
}

/** True when ip sits inside one of the underlay's connected prefixes (no gateway needed). */
export function directlyReachable(underlay: UnderlayLink, ip: string): boolean {
  const target = parseIpv4(ip);
  if (target === undefined) return false;
  return underlay.addresses.some((address) => {
    const cidr = parseCidr(address);
    return cidr !== undefined && cidr.prefixLen < 32 && containsIp(cidr, target);
  });
}

function viaUnderlay(peer: Peer, underlay: UnderlayLink): RouteSpec {
  return {
    dst: formatIpv4(peer.subnet.ip),
    prefixLen: peer.subnet.prefixLen,
    gateway: peer.attrs.publicIp,
    oif: underlay.index,
    protocol: TRELLIS_ROUTE_PROTOCOL,
  };
}

export function desiredState(input: DesiredInput): DesiredState {
  const { backend, underlay, own } = input;
  const routes = new Map<string, RouteSpec>();
  const neighbors = new Map<string, NeighborSpec>();
  const fdb = new Map<string, FdbSpec>();
  const skipped: SkippedPeer[] = [];
  const skip = (peer: Peer, reason: string): void => {
    skipped.push({ subnet: peer.subnet, publicIp: peer.attrs.publicIp, reason });
  };

  let device: DesiredDevice | undefined;
  if (backend.type === "vxlan") {
    if (own.vtepMac === undefined) throw new Error("a vxlan lease needs a VTEP MAC");
    device = {
      name: input.deviceName,
      vni: backend.vni,
      port: backend.port,
      local: underlay.localIp,
      underlayIndex: underlay.index,
      mtu: underlay.mtu - 50,
      mac: own.vtepMac,
      address: `${formatIpv4(own.subnet.ip)}/32`,
    };
  }

  for (const peer of input.peers) {
    const { publicIp, backendType } = peer.attrs;
    if (backendType !== undefined && backendType !== backend.type) {
      skip(peer, `peer runs backend ${backendType}, this network uses ${backend.type}`);
      continue;
    }
    const direct = directlyReachable(underlay, publicIp);
    if (backend.type === "host-gw") {
      if (!direct) {
        skip(
          peer,
          `public IP ${publicIp} is not on a network directly connected to ${underlay.name}; host-gw needs every node on one L2 network (use vxlan)`,
        );
        continue;
      }
      const route = viaUnderlay(peer, underlay);
      routes.set(routeKey(route), route);
      continue;
    }
    if (backend.directRouting && direct) {
      const route = viaUnderlay(peer, underlay);
      routes.set(routeKey(route), route);
      continue;
    }
    const { vtepMac, vni } = peer.attrs;
    if (vtepMac === undefined) {
      skip(peer, "lease has no BackendData.VtepMAC");
      continue;
    }
    if (vni !== undefined && vni !== backend.vni) {
      skip(peer, `peer uses VNI ${vni}, this network uses ${backend.vni}`);
      continue;
    }
    const gateway = formatIpv4(peer.subnet.ip);
    const route: RouteSpec = {
      dst: gateway,
      prefixLen: peer.subnet.prefixLen,
      gateway,
      ...(input.deviceIndex === undefined ? {} : { oif: input.deviceIndex }),
      onlink: true,
      protocol: TRELLIS_ROUTE_PROTOCOL,
    };
    routes.set(routeKey(route), route);
    if (input.deviceIndex !== undefined) {
      neighbors.set(gateway, { index: input.deviceIndex, ip: gateway, mac: vtepMac, permanent: true });
      fdb.set(vtepMac, { index: input.deviceIndex, mac: vtepMac, dst: publicIp });
    }
  }
  return { device, routes, neighbors, fdb, skipped };
}

export function describeSkipped(skipped: SkippedPeer): string {
  return `${formatCidr(skipped.subnet)} (${skipped.publicIp}): ${skipped.reason}`;
}
