// The contract every dataplane backend fulfils, defined once: per address family ("plane"), the device it needs (or
// none, or the other plane's), the kernel entries for one peer and its MTU overhead; and what the node publishes in
// its lease. Backends are pure; the reconciler programs whatever they ask for without knowing which backend it is.
// Each backend is one file in this directory and one line in registry.ts (docs/testing.md: adding a backend).
import { formatIpv4 } from "#lib/ipv4.js";
import { formatIpv6, type Cidr6 } from "#lib/ipv6.js";
import type { FdbSpec, IpFamily, Kernel, LinkChanges, LinkInfo, NeighborSpec, RouteSpec } from "#lib/netlink/kernel.js";
import type { Cidr } from "#lib/ipv4.js";
import type { LeaseAttrs } from "../../lease/lease-codec.js";
import type { Peer } from "../../lease/peers.js";
import { TRELLIS_ROUTE_PROTOCOL } from "../marks.js";
import type { UnderlayLink } from "../underlay.js";

/** The network config's backend fields (flannel's Backend object), whatever the type. */
export interface BackendSettings {
  readonly vni: number;
  readonly port: number;
  readonly directRouting: boolean;
}

export interface OwnLease {
  readonly subnet: Cidr;
  readonly vtepMac?: string | undefined;
  /** The IPv6 subnet of a dual-stack (or IPv6-only) lease: the node runs an IPv6 plane. */
  readonly subnet6?: Cidr6 | undefined;
  /** BackendV6Data.VtepMAC: the MAC of the IPv6 plane's own device, when it has one. */
  readonly vtepMac6?: string | undefined;
}

/** What a backend is asked about: this node as it is now. */
export interface NodeContext {
  readonly deviceName: string;
  /** The IPv6 plane's device name (flannel-v6.<VNI>), when it may need one. */
  readonly device6Name?: string | undefined;
  readonly underlay: UnderlayLink;
  readonly own: OwnLease;
  /** The planes this node runs: 4 unless the network is IPv6-only, and 6 with an IPv6 subnet. */
  readonly families: readonly IpFamily[];
}

/** What the node publishes for its peers' backends is made from. */
export interface LeaseContext {
  readonly publicIp: string;
  /** The node's IPv6 underlay address (PublicIPv6), when it has one and the network is IPv6. */
  readonly publicIpv6?: string | undefined;
  readonly families: readonly IpFamily[];
}

/** A device a backend needs: plain data (a backend's own shape), with what every device has. */
export interface DeviceSpec {
  readonly name: string;
  readonly mtu: number;
  readonly mac: string;
  /** `<subnet>.0/32` (or `<subnet6 network address>/128`): the node's address on the device. */
  readonly address: string;
}

/** One address family's part of the dataplane on this node, as the backend lays it out. */
export interface PlaneLayout<Device extends DeviceSpec = DeviceSpec> {
  readonly family: IpFamily;
  /** The device this plane makes and keeps, or undefined (none, or another plane's). */
  readonly device: Device | undefined;
  /** The plane whose device holds this plane's entries when it has none of its own (IPv6 over the IPv4 VXLAN device). */
  readonly sharesDeviceOf?: IpFamily | undefined;
  /** The node's address on the device that holds this plane's entries, when there is such a device. */
  readonly address: string | undefined;
  /** Bytes of encapsulation per packet of this plane. */
  readonly mtuOverhead: number;
}

export type DeviceVerdict =
  | { readonly action: "keep" }
  | { readonly action: "create" }
  /** A link of that name that is not of the device's kind: not ours, never touched. */
  | { readonly action: "foreign"; readonly kind: string }
  | { readonly action: "recreate"; readonly reason: string }
  | { readonly action: "update"; readonly changes: LinkChanges; readonly reason: string };

/** The kernel entries that make one peer reachable in one plane, or why this backend cannot serve it there. */
export type PeerEntries =
  { readonly route: RouteSpec; readonly neighbor?: NeighborSpec; readonly fdb?: FdbSpec } | { readonly skip: string };

/** The devices a backend makes: what they are, and how to tell, change and make one. */
export interface BackendDevice<Device extends DeviceSpec = DeviceSpec> {
  /** Their link kind ("vxlan"): a link of a device's name and another kind is not ours. */
  readonly kind: string;
  /** Whether an existing link (by name) is the device, can be changed in place, or must be made again. */
  verdict(desired: Device, actual: LinkInfo | undefined): DeviceVerdict;
  /** Creates the device (down: the reconciler brings it up). */
  create(kernel: Kernel, desired: Device): Promise<LinkInfo>;
}

export interface Backend<Device extends DeviceSpec = DeviceSpec> {
  /** The network config's Backend.Type, also published in leases as BackendType. */
  readonly type: string;
  /** How to tell, change and make its devices; undefined when it needs none. */
  readonly device: BackendDevice<Device> | undefined;
  /** True when its IPv6 plane cannot run without an IPv6 address on the underlay (host-gw). */
  readonly needsUnderlay6: boolean;
  /** How one plane of this node is laid out (the node runs it: `family` is in node.families). */
  plane(family: IpFamily, node: NodeContext): PlaneLayout<Device>;
  /** The entries for one peer in one plane; deviceIndex is that of the device holding the plane's entries. */
  peerEntries(family: IpFamily, peer: Peer, node: NodeContext, deviceIndex: number | undefined): PeerEntries;
  /** What this node publishes in its lease for its peers' backends (BackendType, BackendData, BackendV6Data). */
  leaseAttrs(node: LeaseContext): LeaseAttrs;
}

/** A route to a peer's subnet via one of its public IPs on the underlay (host-gw, and vxlan's DirectRouting). */
export function routeViaUnderlay(
  subnet: { readonly dst: string; readonly prefixLen: number },
  gateway: string,
  underlay: UnderlayLink,
): RouteSpec {
  return { ...subnet, gateway, oif: underlay.index, protocol: TRELLIS_ROUTE_PROTOCOL };
}

/** A peer's IPv4 subnet as a route destination. */
export function peerDst(peer: Peer): { dst: string; prefixLen: number } {
  return { dst: formatIpv4(peer.subnet.ip), prefixLen: peer.subnet.prefixLen };
}

/** A peer's IPv6 subnet as a route destination, or undefined for a peer without one. */
export function peerDst6(peer: Peer): { dst: string; prefixLen: number } | undefined {
  const subnet6 = peer.subnet6;
  return subnet6 === undefined ? undefined : { dst: formatIpv6(subnet6.ip), prefixLen: subnet6.prefixLen };
}

/** Why a peer has no place in the IPv6 plane: it runs IPv4 only. */
export const NO_SUBNET6 = "lease has no IPv6 subnet (the node runs IPv4 only)";

/** "dummy", "veth", …; a link without a kind is a physical device (or lo). */
export function linkKindName(link: LinkInfo): string {
  return link.kind ?? "physical";
}
