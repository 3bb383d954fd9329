// rtnetlink messages, as the `netlink` package parses them, → the port's plain data. Records that are neither IPv4 nor
// IPv6 (or not complete) come back as undefined and are skipped by the callers.
import type { Vxlan } from "netlink/dist/rt/ifla.js";
import type { AddressMessage, LinkMessage, NeighborMessage, RouteMessage } from "netlink/dist/rt/structs.js";
import {
  bytesToIp,
  bytesToMac,
  bytesToPort,
  enumNumber,
  neighborStateName,
  routeTypeName,
  scopeName,
} from "./codec.js";
import type { AddressInfo, FdbEntry, IpFamily, LinkInfo, NeighborInfo, RouteInfo, VxlanInfo } from "./kernel.js";
import { ifla, rt } from "./package.js";

export const AF_INET = 2;
export const AF_BRIDGE = 7;
export const AF_INET6 = 10;
/** RTNH_F_ONLINK: rtm_flags' low byte carries next-hop flags, which the package's RouteFlags does not name. */
export const RTNH_F_ONLINK = 4;
export const BRIDGE_MODE_HAIRPIN = 1;

export function afOf(family: IpFamily): number {
  return family === 6 ? AF_INET6 : AF_INET;
}

/** The port's family of an AF_INET or AF_INET6 message; undefined for any other. */
export function familyOfAf(af: number | undefined): IpFamily | undefined {
  return af === AF_INET ? 4 : af === AF_INET6 ? 6 : undefined;
}

export function linkFromMessage({ data, attrs }: LinkMessage): LinkInfo | undefined {
  if (data.index === undefined || attrs.ifname === undefined) return undefined;
  const link: LinkInfo = { index: data.index, name: attrs.ifname, mtu: attrs.mtu ?? 0, up: data.flags?.up === true };
  const mac = bytesToMac(attrs.address);
  if (mac !== undefined) link.mac = mac;
  if (attrs.master !== undefined && attrs.master !== 0) link.masterIndex = attrs.master;
  if (attrs.ifalias !== undefined && attrs.ifalias !== "") link.alias = attrs.ifalias;
  // IFLA_LINK is a u32 the package leaves as bytes.
  if (attrs.link !== undefined && attrs.link.length >= 4 && attrs.link.readUInt32LE(0) !== 0)
    link.peerIndex = attrs.link.readUInt32LE(0);
  if (attrs.linkinfo !== undefined) {
    const info = ifla.parseInfo(attrs.linkinfo);
    if (info.kind !== undefined) link.kind = info.kind;
    if (info.kind === "vxlan" && info.data !== undefined) link.vxlan = vxlanFromAttrs(ifla.parseVxlan(info.data));
    if (info.slaveKind === "bridge" && info.slaveData !== undefined) {
      link.hairpin = ifla.parseBridgePort(info.slaveData).mode === BRIDGE_MODE_HAIRPIN;
    }
  }
  return link;
}

function vxlanFromAttrs(vxlan: Vxlan): VxlanInfo {
  const info: VxlanInfo = { vni: vxlan.id ?? 0, port: bytesToPort(vxlan.port) ?? 0, learning: vxlan.learning !== 0 };
  // The kernel sends one of the two, by the local address's family, and neither when there is none.
  const local = bytesToIp(vxlan.local, 4) ?? bytesToIp(vxlan.local6, 6);
  if (local !== undefined) info.local = local;
  if (vxlan.link !== undefined && vxlan.link !== 0) info.underlayIndex = vxlan.link;
  return info;
}

export function addressFromMessage({ data, attrs }: AddressMessage): AddressInfo | undefined {
  // IFA_LOCAL is the interface's own address; IFA_ADDRESS differs from it only on point-to-point links (IPv6 sends
  // IFA_LOCAL only then).
  const family = familyOfAf(data.family);
  const address = family === undefined ? undefined : bytesToIp(attrs.local ?? attrs.address, family);
  if (data.index === undefined || address === undefined) return undefined;
  return { index: data.index, address, prefixLen: data.prefixlen ?? 0 };
}

export function routeFromMessage({ data, attrs }: RouteMessage): RouteInfo | undefined {
  const family = familyOfAf(data.family);
  if (family === undefined) return undefined;
  const route: RouteInfo = {
    dst: bytesToIp(attrs.dst, family) ?? (family === 6 ? "::" : "0.0.0.0"),
    prefixLen: data.dstLen ?? 0,
    protocol: enumNumber(data.protocol, rt.RouteProtocol),
    table: attrs.table ?? data.table ?? 0,
    scope: scopeName(enumNumber(data.scope, rt.RouteScope)),
    type: routeTypeName(enumNumber(data.type, rt.RouteType)),
    onlink: ((data.flags?.__unknown ?? 0) & RTNH_F_ONLINK) !== 0,
  };
  const gateway = bytesToIp(attrs.gateway, family);
  if (gateway !== undefined) route.gateway = gateway;
  if (attrs.oif !== undefined) route.oif = attrs.oif;
  if (attrs.priority !== undefined) route.metric = attrs.priority;
  return route;
}

export function neighborFromMessage({ data, attrs }: NeighborMessage): NeighborInfo | undefined {
  const family = familyOfAf(data.family);
  const ip = family === undefined ? undefined : bytesToIp(attrs.dst, family);
  if (data.ifindex === undefined || ip === undefined) return undefined;
  const state = neighborStateName(data.state);
  const neighbor: NeighborInfo = { index: data.ifindex, ip, state, permanent: state === "permanent" };
  const mac = bytesToMac(attrs.lladdr);
  if (mac !== undefined) neighbor.mac = mac;
  return neighbor;
}

export function fdbFromMessage({ data, attrs }: NeighborMessage): FdbEntry | undefined {
  const mac = bytesToMac(attrs.lladdr);
  if (data.family !== AF_BRIDGE || data.ifindex === undefined || mac === undefined) return undefined;
  const entry: FdbEntry = {
    index: data.ifindex,
    mac,
    permanent: data.state?.permanent === true,
    self: data.flags?.self === true,
  };
  const dst = bytesToIp(attrs.dst);
  if (dst !== undefined) entry.dst = dst;
  if (attrs.master !== undefined && attrs.master !== 0) entry.masterIndex = attrs.master;
  return entry;
}
