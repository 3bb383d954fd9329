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
  ipToBytes,
  macToBytes,
  maxPrefixLen,
  openEnum,
  portToBytes,
  scopeNumber,
} from "./codec.js";
import type { AddressInfo, IpFamily, LinkChanges, RouteSpec, VxlanSpec } from "./kernel.js";
import { InvalidArgumentError } from "../errors.js";
import { attrs as nl, ifla, rt } from "./package.js";
import { AF_BRIDGE, BRIDGE_MODE_HAIRPIN, RTNH_F_ONLINK, afOf } from "./parse.js";

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

/** IFLA_VXLAN_LOCAL (4 bytes) for an IPv4 local address, IFLA_VXLAN_LOCAL6 (16 bytes) for an IPv6 one. */
function vxlanLocal(local: string): { local: Buffer } | { local6: Buffer } {
  const { family, bytes } = ipToBytes(local, "local");
  return family === 6 ? { local6: bytes } : { local: bytes };
}

/** = `ip link add NAME type vxlan id VNI local IP dev UNDERLAY dstport PORT nolearning` */
export function vxlanInfo(spec: VxlanSpec): StreamData {
  const data = ifla.formatVxlan({
    id: checkInteger(spec.vni, "vni", 0, 0xffffff),
    port: portToBytes(spec.port),
    ...vxlanLocal(spec.local),
    link: checkIndex(spec.underlayIndex, "underlayIndex"),
    learning: spec.learning === true ? 1 : 0,
  });
  return ifla.formatInfo({ kind: "vxlan", data: nested(data) });
}

/** = `ip link set DEV type vxlan [no]learning local IP dev UNDERLAY`: only the attributes given change. */
export function vxlanChangeInfo(changes: NonNullable<LinkChanges["vxlan"]>): StreamData {
  const data: Parameters<typeof ifla.formatVxlan>[0] = {};
  if (changes.learning !== undefined) data.learning = changes.learning ? 1 : 0;
  if (changes.local !== undefined) Object.assign(data, vxlanLocal(changes.local));
  if (changes.underlayIndex !== undefined) data.link = checkIndex(changes.underlayIndex, "underlayIndex");
  return ifla.formatInfo({ kind: "vxlan", data: nested(ifla.formatVxlan(data)) });
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

/** IFLA_IFALIAS holds at most 255 bytes (IFALIASZ with its NUL). */
export function checkAlias(alias: string): string {
  if (Buffer.byteLength(alias) > 255 || alias.includes("\0"))
    throw new InvalidArgumentError("alias", alias, "at most 255 bytes, without NUL");
  return alias;
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
  if (changes.alias !== undefined) attrs.ifalias = checkAlias(changes.alias);
  return { data, attrs };
}

/**
 * A route to install (`remove` false) or to delete. Deletes match any scope and type, and protocol/metric only when
 * given, like `ip route del`; tables above 255 travel in RTA_TABLE only. The family is dst's; IPv6 ignores the scope.
 */
export function routeMessage(spec: RouteSpec, remove: boolean): { data: Route; attrs: RouteAttrs } {
  const table = checkInteger(spec.table ?? RT_TABLE_MAIN, "table", 1, 0xffffffff);
  const dst = ipToBytes(spec.dst, "dst");
  const data: Route = {
    family: afOf(dst.family),
    dstLen: checkInteger(spec.prefixLen, "prefixLen", 0, maxPrefixLen(dst.family)),
    table: table < 256 ? table : 0,
  };
  const attrs: RouteAttrs = { dst: dst.bytes, table };
  if (spec.gateway !== undefined) attrs.gateway = gatewayBytes(spec.gateway, spec.dst, dst.family);
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

/** A gateway of another family than dst would be EINVAL from the kernel (RTA_VIA is not offered): say so here. */
function gatewayBytes(gateway: string, dst: string, family: IpFamily): Buffer {
  const parsed = ipToBytes(gateway, "gateway");
  if (parsed.family !== family)
    throw new InvalidArgumentError("gateway", gateway, `an IPv${family} address, of the same family as dst "${dst}"`);
  return parsed.bytes;
}

export function describeRoute(route: RouteSpec): string {
  const via = route.gateway === undefined ? "" : ` via ${route.gateway}`;
  const dev = route.oif === undefined ? "" : ` dev #${route.oif}`;
  const table = route.table === undefined || route.table === RT_TABLE_MAIN ? "" : ` table ${route.table}`;
  return `${route.dst}/${route.prefixLen}${via}${dev}${table}`;
}

/**
 * IFA_LOCAL and IFA_ADDRESS both carry the address, as `ip addr add` sends them on a non-point-to-point link. An
 * IPv6 address to add also carries IFA_F_NODAD (`ip addr add … nodad`): ours come from our own lease, and an address
 * under duplicate address detection stays tentative (unusable as a source) for a second or more.
 */
export function addressMessage(a: AddressInfo, remove = false): { data: Address; attrs: AddressAttrs } {
  const { family, bytes } = ipToBytes(a.address, "address");
  const prefixlen = checkInteger(a.prefixLen, "prefixLen", 0, maxPrefixLen(family));
  const attrs: AddressAttrs = { local: bytes, address: bytes };
  if (family === 6 && !remove) attrs.flags = { nodad: true };
  return { data: { family: afOf(family), prefixlen, index: checkIndex(a.index) }, attrs };
}

/**
 * An ARP entry (NDP for an IPv6 ip); without `mac` (a delete) only the key. Non-permanent entries start as reachable
 * and age.
 */
export function neighborMessage(n: { index: number; ip: string; mac?: string; permanent?: boolean }): {
  data: Neighbor;
  attrs: NeighborAttrs;
} {
  const ip = ipToBytes(n.ip, "ip");
  const data: Neighbor = { family: afOf(ip.family), ifindex: checkIndex(n.index) };
  const attrs: NeighborAttrs = { dst: ip.bytes };
  if (n.mac !== undefined) {
    data.state = n.permanent === true ? { permanent: true } : { reachable: true };
    attrs.lladdr = macToBytes(n.mac, "mac");
  }
  return { data, attrs };
}

/**
 * An FDB entry of the device itself (NTF_SELF), permanent, in the AF_BRIDGE family like `bridge fdb`; NDA_DST holds
 * 4 or 16 bytes, by the destination's family.
 */
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
  if (entry.dst !== undefined) attrs.dst = ipToBytes(entry.dst, "dst").bytes;
  return { data, attrs };
}

export function describeFdb(entry: { index: number; mac: string; dst?: string }): string {
  return `${entry.mac}${entry.dst === undefined ? "" : ` dst ${entry.dst}`} on link #${entry.index}`;
}
