// VXLAN, as flannel does it: one device flannel.<VNI> on the underlay, learning off, and per peer an onlink route via
// the peer's subnet address on the device, a permanent ARP entry for it and an FDB entry sending its VTEP MAC to the
// peer's public IP. With DirectRouting, a peer on a directly connected network gets a plain route via its public IP
// instead (no encapsulation).
//
// The IPv6 plane is the same over a second device, flannel-v6.<VNI> (flannel's), whose outer packets leave from the
// node's IPv6 underlay address: per peer an onlink route via its IPv6 subnet's first address, a permanent NDP entry
// and an FDB entry to its PublicIPv6. A node without an IPv6 underlay address tunnels its IPv6 pods over IPv4
// instead: on a dual-stack network through flannel.<VNI> itself (the kernel allows one IPv4 VXLAN socket per VNI and
// port, so a second IPv4 device cannot exist), with the peer's BackendData MAC; on an IPv6-only network through
// flannel-v6.<VNI> with an IPv4 local address. Both ends of a tunnel must agree: a peer whose IPv6 tunnel runs over
// the other family is skipped, with the reason.
import { formatIpv4 } from "#lib/ipv4.js";
import { formatIpv6 } from "#lib/ipv6.js";
import {
  familyOf,
  type IpFamily,
  type Kernel,
  type LinkChanges,
  type LinkInfo,
  type RouteSpec,
} from "#lib/netlink/kernel.js";
import type { Peer } from "../../lease/peers.js";
import { TRELLIS_ROUTE_PROTOCOL } from "../marks.js";
import { directlyReachable } from "../underlay.js";
import { deriveVtepMac, deriveVtepMac6 } from "../vtep-mac.js";
import {
  linkKindName,
  NO_SUBNET6,
  peerDst,
  peerDst6,
  routeViaUnderlay,
  type Backend,
  type BackendSettings,
  type DeviceVerdict,
  type DeviceSpec,
  type NodeContext,
  type PeerEntries,
  type PlaneLayout,
} from "./backend.js";

/** Outer Ethernet 14 + IP 20 + UDP 8 + VXLAN 8 bytes. */
export const VXLAN_OVERHEAD = 50;
/** Outer Ethernet 14 + IPv6 40 + UDP 8 + VXLAN 8 bytes. */
export const VXLAN6_OVERHEAD = 70;

export interface VxlanDevice extends DeviceSpec {
  readonly vni: number;
  readonly port: number;
  readonly local: string;
  readonly underlayIndex: number;
}

/**
 * Whether the existing device (by name) is the one we want, can be adjusted in place, or must be made again. Only a
 * vxlan link is ours; the kernel changes learning, local (within its family) and the underlay in place, not the VNI,
 * the port or the family of local.
 */
export function deviceVerdict(desired: VxlanDevice, actual: LinkInfo | undefined): DeviceVerdict {
  if (actual === undefined) return { action: "create" };
  const v = actual.vxlan;
  if (actual.kind !== "vxlan" || v === undefined) return { action: "foreign", kind: linkKindName(actual) };
  const differences: string[] = [];
  if (v.vni !== desired.vni) differences.push(`VNI ${v.vni} → ${desired.vni}`);
  if (v.port !== desired.port) differences.push(`port ${v.port} → ${desired.port}`);
  if (v.local !== undefined && familyOf(v.local) !== familyOf(desired.local))
    differences.push(`local ${v.local} → ${desired.local}`);
  if (differences.length > 0) return { action: "recreate", reason: differences.join(", ") };
  const changes: LinkChanges = {};
  const vxlan: NonNullable<LinkChanges["vxlan"]> = {};
  const reasons: string[] = [];
  if (v.learning) {
    vxlan.learning = false;
    reasons.push("learning on → off");
  }
  if (v.local !== desired.local) {
    vxlan.local = desired.local;
    reasons.push(`local ${v.local ?? "none"} → ${desired.local}`);
  }
  if (v.underlayIndex !== desired.underlayIndex) {
    vxlan.underlayIndex = desired.underlayIndex;
    reasons.push(`underlay ifindex ${v.underlayIndex ?? "none"} → ${desired.underlayIndex}`);
  }
  if (Object.keys(vxlan).length > 0) changes.vxlan = vxlan;
  if (actual.mtu !== desired.mtu) {
    changes.mtu = desired.mtu;
    reasons.push(`mtu ${actual.mtu} → ${desired.mtu}`);
  }
  if (actual.mac !== desired.mac) {
    changes.mac = desired.mac;
    reasons.push(`mac ${actual.mac ?? "none"} → ${desired.mac}`);
  }
  if (!actual.up) {
    changes.up = true;
    reasons.push("down → up");
  }
  return reasons.length === 0 ? { action: "keep" } : { action: "update", changes, reason: reasons.join(", ") };
}

/** How this node tunnels its IPv6 pods: over its IPv6 underlay, over IPv4 on the IPv4 plane's device, or over IPv4 on a device of its own. */
type Tunnel6 = "ipv6" | "shared" | "ipv4";

function tunnel6(node: NodeContext): Tunnel6 {
  if (node.underlay.localIp6 !== undefined) return "ipv6";
  return node.families.includes(4) ? "shared" : "ipv4";
}

export function vxlanBackend(settings: BackendSettings): Backend<VxlanDevice> {
  const device = (
    name: string | undefined,
    local: string,
    overhead: number,
    mac: string | undefined,
    address: string,
    node: NodeContext,
  ): VxlanDevice => {
    if (name === undefined) throw new Error("an IPv6 vxlan plane needs a device name");
    if (mac === undefined) throw new Error(`a vxlan lease needs a VTEP MAC for ${name}`);
    return {
      name,
      vni: settings.vni,
      port: settings.port,
      local,
      underlayIndex: node.underlay.index,
      mtu: node.underlay.mtu - overhead,
      mac,
      address,
    };
  };
  return {
    type: "vxlan",
    needsUnderlay6: false,
    device: {
      kind: "vxlan",
      verdict: deviceVerdict,
      create: (kernel: Kernel, desired: VxlanDevice) =>
        kernel.createVxlan({
          name: desired.name,
          vni: desired.vni,
          port: desired.port,
          local: desired.local,
          underlayIndex: desired.underlayIndex,
          learning: false,
          mtu: desired.mtu,
          mac: desired.mac,
        }),
    },
    plane(family: IpFamily, node: NodeContext): PlaneLayout<VxlanDevice> {
      const { own, underlay } = node;
      if (family === 4) {
        const address = `${formatIpv4(own.subnet.ip)}/32`;
        const spec = device(node.deviceName, underlay.localIp, VXLAN_OVERHEAD, own.vtepMac, address, node);
        return { family, device: spec, address, mtuOverhead: VXLAN_OVERHEAD };
      }
      if (own.subnet6 === undefined) throw new Error("an IPv6 plane needs an IPv6 subnet");
      // flannel's: the subnet's first address as a /128 on the device.
      const address = `${formatIpv6(own.subnet6.ip)}/128`;
      switch (tunnel6(node)) {
        case "shared":
          return { family, device: undefined, sharesDeviceOf: 4, address, mtuOverhead: VXLAN_OVERHEAD };
        case "ipv4": {
          const spec = device(node.device6Name, underlay.localIp, VXLAN_OVERHEAD, own.vtepMac6, address, node);
          return { family, device: spec, address, mtuOverhead: VXLAN_OVERHEAD };
        }
        case "ipv6": {
          const local = underlay.localIp6 ?? "";
          const spec = device(node.device6Name, local, VXLAN6_OVERHEAD, own.vtepMac6, address, node);
          return { family, device: spec, address, mtuOverhead: VXLAN6_OVERHEAD };
        }
      }
    },
    peerEntries(family: IpFamily, peer: Peer, node: NodeContext, deviceIndex: number | undefined): PeerEntries {
      const { underlay } = node;
      if (family === 4) {
        if (settings.directRouting && directlyReachable(underlay, peer.attrs.publicIp))
          return { route: routeViaUnderlay(peerDst(peer), peer.attrs.publicIp, underlay) };
        return tunnelEntries(peerDst(peer), peer.attrs, "BackendData", peer.attrs.publicIp, deviceIndex);
      }
      const dst = peerDst6(peer);
      if (dst === undefined) return { skip: NO_SUBNET6 };
      const { publicIpv6 } = peer.attrs;
      const tunnel = tunnel6(node);
      if (tunnel === "ipv6") {
        if (publicIpv6 === undefined)
          return {
            skip: `lease has no PublicIPv6: its IPv6 pods are tunnelled over IPv4, this node's over IPv6 (give every node an IPv6 address on its underlay, or none)`,
          };
        if (settings.directRouting && directlyReachable(underlay, publicIpv6))
          return { route: routeViaUnderlay(dst, publicIpv6, underlay) };
        return tunnelEntries(dst, peer.attrs.v6 ?? {}, "BackendV6Data", publicIpv6, deviceIndex);
      }
      if (publicIpv6 !== undefined)
        return {
          skip: `lease has PublicIPv6 ${publicIpv6}, but this node has no IPv6 address on ${underlay.name} to tunnel to it from (give it one, or --public-ipv6)`,
        };
      return tunnel === "shared"
        ? tunnelEntries(dst, peer.attrs, "BackendData", peer.attrs.publicIp, deviceIndex)
        : tunnelEntries(dst, peer.attrs.v6 ?? {}, "BackendV6Data", peer.attrs.publicIp, deviceIndex);
    },
    leaseAttrs({ publicIp, publicIpv6, families }) {
      const v6 = families.includes(6);
      return {
        publicIp,
        ...(v6 && publicIpv6 !== undefined ? { publicIpv6 } : {}),
        backendType: "vxlan",
        ...(families.includes(4) ? { vni: settings.vni, vtepMac: deriveVtepMac(publicIp, settings.vni) } : {}),
        // The IPv6 device's data; none when IPv6 rides on the IPv4 device (peers use BackendData for it).
        ...(v6 && (publicIpv6 !== undefined || !families.includes(4))
          ? { v6: { vni: settings.vni, vtepMac: deriveVtepMac6(publicIpv6 ?? publicIp, settings.vni) } }
          : {}),
      };
    },
  };

  /** A peer through the tunnel: an onlink route via its subnet's first address, NDP/ARP for it, FDB to `remote`. */
  function tunnelEntries(
    dst: { dst: string; prefixLen: number },
    data: { readonly vni?: number | undefined; readonly vtepMac?: string | undefined },
    field: "BackendData" | "BackendV6Data",
    remote: string,
    deviceIndex: number | undefined,
  ): PeerEntries {
    const { vtepMac, vni } = data;
    if (vtepMac === undefined) return { skip: `lease has no ${field}.VtepMAC` };
    if (vni !== undefined && vni !== settings.vni)
      return { skip: `peer uses VNI ${vni}, this network uses ${settings.vni}` };
    const route: RouteSpec = {
      ...dst,
      gateway: dst.dst,
      ...(deviceIndex === undefined ? {} : { oif: deviceIndex }),
      onlink: true,
      protocol: TRELLIS_ROUTE_PROTOCOL,
    };
    if (deviceIndex === undefined) return { route };
    return {
      route,
      neighbor: { index: deviceIndex, ip: dst.dst, mac: vtepMac, permanent: true },
      fdb: { index: deviceIndex, mac: vtepMac, dst: remote },
    };
  }
}
