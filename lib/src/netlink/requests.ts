// Request bodies for rtnetlink, built from the port's specs (pure; no socket). The package types nested attributes
// (IFLA_LINKINFO and its data, VETH_INFO_PEER) as Buffers but only offers stream encoders for them, so `nested`
// renders an encoder's output into the Buffer it expects.
import type { LinkAttrs } from "netlink/dist/rt/ifla.js";
import type {
  Address,
  AddressAttrs,
  Link,
  Neighbor,
  NeighborAttrs,
  Route,
  RouteAttrs,
  RouteProtocol,
  RouteScope,
  RouteType,
} from "netlink/dist/rt/structs.js";
import type { StreamData } from "netlink/dist/structs.js";
import {
  checkIndex,
  checkInteger,
  checkLinkName,
  ipv4ToBytes,
  macToBytes,
  openEnum,
  portToBytes,
  scopeNumber,
} from "./codec.js";
import type { AddressInfo, LinkChanges, RouteSpec, VxlanSpec } from "./kernel.js";
import { attrs as nl, ifla, rt } from "./package.js";
import { AF_BRIDGE, AF_INET, BRIDGE_MODE_HAIRPIN, RTNH_F_ONLINK } from "./parse.js";

// Request flags must be numbers: the package silently ignores anything else.
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;

export const RT_TABLE_MAIN = 254;
const RTPROT_BOOT = 3;
const RTN_UNICAST = 1;
const RT_SCOPE_NOWHERE = 255;

export function nested(data: StreamData): Buffer {
  const out = new nl.AttrStream();
  out.emit(data);
  return Buffer.concat(out.bufs);
}

/** The attributes every new link shares: name, optional MTU and MAC. */
export function newLinkAttrs(spec: { name: string; mtu?: number; mac?: string }, linkinfo: StreamData): LinkAttrs {
  const attrs: LinkAttrs = { ifname: checkLinkName(spec.name), linkinfo: nested(linkinfo) };
  if (spec.mtu !== undefined) attrs.mtu = checkInteger(spec.mtu, "mtu", 68, 65535);
  if (spec.mac !== undefined) attrs.address = macToBytes(spec.mac, "mac");
  return attrs;
}

/** = `ip link add NAME type vxlan id VNI local IP dev UNDERLAY dstport PORT nolearning` */
export function vxlanInfo(spec: VxlanSpec): StreamData {
  const data = ifla.formatVxlan({
    id: checkInteger(spec.vni, "vni", 0, 0xffffff),
    port: portToBytes(spec.port),
    local: ipv4ToBytes(spec.local, "local"),
    link: checkIndex(spec.underlayIndex, "underlayIndex"),
    learning: spec.learning === true ? 1 : 0,
  });
  return ifla.formatInfo({ kind: "vxlan", data: nested(data) });
}

/** VETH_INFO_PEER is a whole ifinfomsg plus attributes; IFLA_NET_NS_FD there creates the peer in that namespace. */
export function vethInfo(peer: {
  name: string;
  mtu: number | undefined;
  mac: string | undefined;
  netnsFd: number | undefined;
}): StreamData {
  const attrs: LinkAttrs = { ifname: checkLinkName(peer.name, "peerName") };
  if (peer.mtu !== undefined) attrs.mtu = peer.mtu;
  if (peer.mac !== undefined) attrs.address = macToBytes(peer.mac, "peerMac");
  if (peer.netnsFd !== undefined) attrs.netNsFd = peer.netnsFd;
  const peerMessage = nested((out) => {
    rt.formatLinkMessage({ kind: "link", data: {}, attrs }, out);
  });
  return ifla.formatInfo({ kind: "veth", data: nested(ifla.formatVethInfo({ peer: peerMessage })) });
}

/** IFLA_BRPORT_MODE through the bridge's slave data, as `ip link set DEV type bridge_slave hairpin on` does. */
export function hairpinInfo(on: boolean): StreamData {
  const port = ifla.formatBridgePort({ mode: on ? BRIDGE_MODE_HAIRPIN : 0 });
  return ifla.formatInfo({ slaveKind: "bridge", slaveData: nested(port) });
}

export function setLinkMessage(index: number, changes: LinkChanges): { data: Link; attrs: LinkAttrs } {
  const data: Link = { index: checkIndex(index) };
  const attrs: LinkAttrs = {};
  if (changes.up !== undefined) {
    data.flags = changes.up ? { up: true } : {};
    data.change = { up: true };
  }
  if (changes.mtu !== undefined) attrs.mtu = checkInteger(changes.mtu, "mtu", 68, 65535);
  if (changes.masterIndex !== undefined) attrs.master = checkInteger(changes.masterIndex, "masterIndex", 0, 0x7fffffff);
  if (changes.mac !== undefined) attrs.address = macToBytes(changes.mac, "mac");
  return { data, attrs };
}

/**
 * A route to install (`remove` false) or to delete. Deletes match any scope and type, and protocol/metric only when
 * given, like `ip route del`; tables above 255 travel in RTA_TABLE only.
 */
export function routeMessage(spec: RouteSpec, remove: boolean): { data: Route; attrs: RouteAttrs } {
  const table = checkInteger(spec.table ?? RT_TABLE_MAIN, "table", 1, 0xffffffff);
  const data: Route = {
    family: AF_INET,
    dstLen: checkInteger(spec.prefixLen, "prefixLen", 0, 32),
    table: table < 256 ? table : 0,
  };
  const attrs: RouteAttrs = { dst: ipv4ToBytes(spec.dst, "dst"), table };
  if (spec.gateway !== undefined) attrs.gateway = ipv4ToBytes(spec.gateway, "gateway");
  if (spec.oif !== undefined) attrs.oif = checkIndex(spec.oif, "oif");
  if (spec.metric !== undefined) attrs.priority = checkInteger(spec.metric, "metric", 0, 0xffffffff);
  if (remove) {
    data.scope = openEnum<RouteScope>(RT_SCOPE_NOWHERE);
    if (spec.protocol !== undefined)
      data.protocol = openEnum<RouteProtocol>(checkInteger(spec.protocol, "protocol", 0, 255));
  } else {
    data.protocol = openEnum<RouteProtocol>(checkInteger(spec.protocol ?? RTPROT_BOOT, "protocol", 0, 255));
    data.scope = openEnum<RouteScope>(scopeNumber(spec.scope ?? (spec.gateway === undefined ? "link" : "universe")));
    data.type = openEnum<RouteType>(RTN_UNICAST);
    if (spec.onlink === true) data.flags = { __unknown: RTNH_F_ONLINK };
  }
  return { data, attrs };
}

export function describeRoute(route: RouteSpec): string {
  const via = route.gateway === undefined ? "" : ` via ${route.gateway}`;
  const dev = route.oif === undefined ? "" : ` dev #${route.oif}`;
  const table = route.table === undefined || route.table === RT_TABLE_MAIN ? "" : ` table ${route.table}`;
  return `${route.dst}/${route.prefixLen}${via}${dev}${table}`;
}

/** IFA_LOCAL and IFA_ADDRESS both carry the address, as `ip addr add` sends them on a non-point-to-point link. */
export function addressMessage(a: AddressInfo): { data: Address; attrs: AddressAttrs } {
  const ip = ipv4ToBytes(a.address, "address");
  return {
    data: { family: AF_INET, prefixlen: checkInteger(a.prefixLen, "prefixLen", 0, 32), index: checkIndex(a.index) },
    attrs: { local: ip, address: ip },
  };
}

/** An ARP entry; without `mac` (a delete) only the key. Non-permanent entries start as reachable and age. */
export function neighborMessage(n: { index: number; ip: string; mac?: string; permanent?: boolean }): {
  data: Neighbor;
  attrs: NeighborAttrs;
} {
  const data: Neighbor = { family: AF_INET, ifindex: checkIndex(n.index) };
  const attrs: NeighborAttrs = { dst: ipv4ToBytes(n.ip, "ip") };
  if (n.mac !== undefined) {
    data.state = n.permanent === true ? { permanent: true } : { reachable: true };
    attrs.lladdr = macToBytes(n.mac, "mac");
  }
  return { data, attrs };
}

/** An FDB entry of the device itself (NTF_SELF), permanent, in the AF_BRIDGE family like `bridge fdb`. */
export function fdbMessage(entry: { index: number; mac: string; dst?: string }): {
  data: Neighbor;
  attrs: NeighborAttrs;
} {
  const data: Neighbor = {
    family: AF_BRIDGE,
    ifindex: checkIndex(entry.index),
    state: { permanent: true },
    flags: { self: true },
  };
  const attrs: NeighborAttrs = { lladdr: macToBytes(entry.mac, "mac") };
  if (entry.dst !== undefined) attrs.dst = ipv4ToBytes(entry.dst, "dst");
  return { data, attrs };
}

export function describeFdb(entry: { index: number; mac: string; dst?: string }): string {
  return `${entry.mac}${entry.dst === undefined ? "" : ` dst ${entry.dst}`} on link #${entry.index}`;
}
