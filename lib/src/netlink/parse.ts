// rtnetlink messages, as the `netlink` package parses them, → the port's plain data. Records that are not IPv4 (or
// not complete) come back as undefined and are skipped by the callers.
import type { Vxlan } from "netlink/dist/rt/ifla.js";
import type { AddressMessage, LinkMessage, NeighborMessage, RouteMessage } from "netlink/dist/rt/structs.js";
import {
  bytesToIpv4,
  bytesToMac,
  bytesToPort,
  enumNumber,
  neighborStateName,
  routeTypeName,
  scopeName,
} from "./codec.js";
import type { AddressInfo, FdbEntry, LinkInfo, NeighborInfo, RouteInfo, VxlanInfo } from "./kernel.js";
import { ifla, rt } from "./package.js";

export const AF_INET = 2;
export const AF_BRIDGE = 7;
/** RTNH_F_ONLINK: rtm_flags' low byte carries next-hop flags, which the package's RouteFlags does not name. */
export const RTNH_F_ONLINK = 4;
export const BRIDGE_MODE_HAIRPIN = 1;

export function linkFromMessage({ data, attrs }: LinkMessage): LinkInfo | undefined {
  if (data.index === undefined || attrs.ifname === undefined) return undefined;
  const link: LinkInfo = { index: data.index, name: attrs.ifname, mtu: attrs.mtu ?? 0, up: data.flags?.up === true };
  const mac = bytesToMac(attrs.address);
  if (mac !== undefined) link.mac = mac;
  if (attrs.master !== undefined && attrs.master !== 0) link.masterIndex = attrs.master;
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
  const local = bytesToIpv4(vxlan.local);
  if (local !== undefined) info.local = local;
  if (vxlan.link !== undefined && vxlan.link !== 0) info.underlayIndex = vxlan.link;
  return info;
}

export function addressFromMessage({ data, attrs }: AddressMessage): AddressInfo | undefined {
  // IFA_LOCAL is the interface's own address; IFA_ADDRESS differs from it only on point-to-point links.
  const address = bytesToIpv4(attrs.local ?? attrs.address);
  if (data.family !== AF_INET || data.index === undefined || address === undefined) return undefined;
  return { index: data.index, address, prefixLen: data.prefixlen ?? 0 };
}

export function routeFromMessage({ data, attrs }: RouteMessage): RouteInfo | undefined {
  if (data.family !== AF_INET) return undefined;
  const route: RouteInfo = {
    dst: bytesToIpv4(attrs.dst) ?? "0.0.0.0",
    prefixLen: data.dstLen ?? 0,
    protocol: enumNumber(data.protocol, rt.RouteProtocol),
    table: attrs.table ?? data.table ?? 0,
    scope: scopeName(enumNumber(data.scope, rt.RouteScope)),
    type: routeTypeName(enumNumber(data.type, rt.RouteType)),
    onlink: ((data.flags?.__unknown ?? 0) & RTNH_F_ONLINK) !== 0,
  };
  const gateway = bytesToIpv4(attrs.gateway);
  if (gateway !== undefined) route.gateway = gateway;
  if (attrs.oif !== undefined) route.oif = attrs.oif;
  if (attrs.priority !== undefined) route.metric = attrs.priority;
  return route;
}

export function neighborFromMessage({ data, attrs }: NeighborMessage): NeighborInfo | undefined {
  const ip = bytesToIpv4(attrs.dst);
  if (data.family !== AF_INET || data.ifindex === undefined || ip === undefined) return undefined;
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
  const dst = bytesToIpv4(attrs.dst);
  if (dst !== undefined) entry.dst = dst;
  if (attrs.master !== undefined && attrs.master !== 0) entry.masterIndex = attrs.master;
  return entry;
}
