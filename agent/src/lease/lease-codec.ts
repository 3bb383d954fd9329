// Lease keys and values exactly as flannel writes them:
//   <prefix>/subnets/172.30.5.0-24 → {"PublicIP":"10.0.0.2","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"…"}}
// and for a dual-stack node (flannel's MakeSubnetKey: the IPv4 subnet, "&", the IPv6 one, each with "-" before its
// length; an IPv6-only node's IPv4 part is 0.0.0.0-0):
//   <prefix>/subnets/172.30.5.0-24&fd30:0:0:5::-64 → {…,"PublicIPv6":"fd00::2","BackendV6Data":{"VNI":1,"VtepMAC":"…"}}
// Pure: the registry adapter uses these to talk to etcd, the watcher to decode what it sees.
import { formatIpv4, isCanonical, isIpv4, parseCidr, type Cidr } from "#lib/ipv4.js";
import { formatIpv6, isCanonical6, isIpv6, parseCidr6, parseIpv6, type Cidr6 } from "#lib/ipv6.js";
import { isUnicastMac } from "#lib/names.js";

/** flannel's BackendData / BackendV6Data of a vxlan lease. */
export interface VxlanData {
  readonly vni?: number;
  readonly vtepMac?: string;
}

export interface LeaseAttrs {
  readonly publicIp: string;
  /** "vxlan", "host-gw", or whatever another agent wrote; absent in a bare reservation. */
  readonly backendType?: string;
  readonly vni?: number;
  readonly vtepMac?: string;
  /** PublicIPv6: the node's IPv6 underlay address, when it has an IPv6 subnet. */
  readonly publicIpv6?: string;
  /** BackendV6Data: the IPv6 VXLAN device's VNI and MAC. */
  readonly v6?: VxlanData;
}

/** Both halves of a lease key; `subnet6` only in a dual-stack (or IPv6-only) key. */
export interface LeaseKeyName {
  readonly subnet: Cidr;
  readonly subnet6?: Cidr6 | undefined;
}

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string };

export function subnetsPrefix(etcdPrefix: string): string {
  return `${etcdPrefix}/subnets/`;
}

export function configKey(etcdPrefix: string): string {
  return `${etcdPrefix}/config`;
}

/** "172.30.5.0-24", or "172.30.5.0-24&fd30:0:0:5::-64" with an IPv6 subnet: the subnets in a key. */
export function subnetKeyName(subnet: Cidr, subnet6?: Cidr6): string {
  const v4 = `${formatIpv4(subnet.ip)}-${subnet.prefixLen}`;
  return subnet6 === undefined ? v4 : `${v4}&${formatIpv6(subnet6.ip)}-${subnet6.prefixLen}`;
}

export function subnetKey(etcdPrefix: string, subnet: Cidr, subnet6?: Cidr6): string {
  return subnetsPrefix(etcdPrefix) + subnetKeyName(subnet, subnet6);
}

/**
 * The subnets named by a key under <prefix>/subnets/, or undefined for anything else. Stricter than flannel's
 * regular expression: both parts must be canonical and the IPv6 part in the form flannel writes (RFC 5952), so one
 * pair of subnets has exactly one key.
 */
export function parseLeaseKey(etcdPrefix: string, key: string): LeaseKeyName | undefined {
  const prefix = subnetsPrefix(etcdPrefix);
  if (!key.startsWith(prefix)) return undefined;
  const name = key.slice(prefix.length);
  const amp = name.indexOf("&");
  const subnet = parseKeyPart(amp < 0 ? name : name.slice(0, amp), parseCidr, isCanonical);
  if (subnet === undefined) return undefined;
  if (amp < 0) return { subnet };
  const subnet6 = parseKeyPart(name.slice(amp + 1), parseCidr6, isCanonical6);
  if (subnet6 === undefined || subnetKeyName(subnet, subnet6) !== name) return undefined;
  return { subnet, subnet6 };
}

function parseKeyPart<T>(
  part: string,
  parse: (text: string) => T | undefined,
  canonical: (cidr: T) => boolean,
): T | undefined {
  const dash = part.lastIndexOf("-");
  if (dash < 0) return undefined;
  const cidr = parse(`${part.slice(0, dash)}/${part.slice(dash + 1)}`);
  return cidr !== undefined && canonical(cidr) ? cidr : undefined;
}

/** Whether two leases are the same key (both halves). */
export function sameKey(a: LeaseKeyName, b: LeaseKeyName): boolean {
  return subnetKeyName(a.subnet, a.subnet6) === subnetKeyName(b.subnet, b.subnet6);
}

/** The IPv4 subnet named by a key (see parseLeaseKey). */
export function parseSubnetKey(etcdPrefix: string, key: string): Cidr | undefined {
  return parseLeaseKey(etcdPrefix, key)?.subnet;
}

/** Also accepts the user's "172.30.5.0/24" and the key form "172.30.5.0-24". */
export function parseSubnetArg(text: string): Cidr | undefined {
  const cidr = parseCidr(text.replace(/-(\d+)$/, "/$1"));
  return cidr !== undefined && isCanonical(cidr) ? cidr : undefined;
}

function encodeVxlanData(data: VxlanData): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (data.vni !== undefined) out.VNI = data.vni;
  if (data.vtepMac !== undefined) out.VtepMAC = data.vtepMac;
  return out;
}

/** flannel's field order: PublicIP, PublicIPv6, BackendType, BackendData, BackendV6Data. */
export function encodeLeaseValue(attrs: LeaseAttrs): string {
  const value: Record<string, unknown> = { PublicIP: attrs.publicIp };
  if (attrs.publicIpv6 !== undefined) value.PublicIPv6 = attrs.publicIpv6;
  if (attrs.backendType !== undefined) value.BackendType = attrs.backendType;
  if (attrs.vni !== undefined || attrs.vtepMac !== undefined) value.BackendData = encodeVxlanData(attrs);
  if (attrs.v6 !== undefined) value.BackendV6Data = encodeVxlanData(attrs.v6);
  return JSON.stringify(value);
}

function decodeVxlanData(data: unknown, field: string): Decoded<VxlanData> {
  if (typeof data !== "object" || data === null || Array.isArray(data)) return { ok: true, value: {} };
  const d = data as Record<string, unknown>;
  let vni: number | undefined;
  let vtepMac: string | undefined;
  if (d.VNI !== undefined) {
    if (typeof d.VNI !== "number" || !Number.isInteger(d.VNI) || d.VNI < 0 || d.VNI > 16_777_215)
      return { ok: false, reason: `${field}.VNI ${JSON.stringify(d.VNI)} is not a VNI` };
    vni = d.VNI;
  }
  if (d.VtepMAC !== undefined) {
    const mac = typeof d.VtepMAC === "string" ? d.VtepMAC.toLowerCase() : undefined;
    if (mac === undefined || !isUnicastMac(mac))
      return { ok: false, reason: `${field}.VtepMAC ${JSON.stringify(d.VtepMAC)} is not a unicast MAC address` };
    vtepMac = mac;
  }
  return {
    ok: true,
    value: { ...(vni === undefined ? {} : { vni }), ...(vtepMac === undefined ? {} : { vtepMac }) },
  };
}

/** Decodes a lease value; a value we cannot use comes back with the reason, so callers can skip it and say why. */
export function decodeLeaseValue(text: string): Decoded<LeaseAttrs> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, reason: `value is not valid JSON: ${JSON.stringify(text.slice(0, 60))}` };
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    return { ok: false, reason: "value is not a JSON object" };
  const obj = raw as Record<string, unknown>;
  const publicIp = obj.PublicIP;
  if (typeof publicIp !== "string" || !isIpv4(publicIp)) {
    return { ok: false, reason: `PublicIP ${JSON.stringify(publicIp ?? null)} is not an IPv4 address` };
  }
  const publicIpv6 = obj.PublicIPv6;
  if (publicIpv6 !== undefined && publicIpv6 !== null && (typeof publicIpv6 !== "string" || !isIpv6(publicIpv6)))
    return { ok: false, reason: `PublicIPv6 ${JSON.stringify(publicIpv6)} is not an IPv6 address` };
  const backendType = obj.BackendType;
  if (backendType !== undefined && typeof backendType !== "string")
    return { ok: false, reason: "BackendType is not a string" };
  const data = decodeVxlanData(obj.BackendData, "BackendData");
  if (!data.ok) return data;
  const v6 =
    obj.BackendV6Data === undefined || obj.BackendV6Data === null
      ? undefined
      : decodeVxlanData(obj.BackendV6Data, "BackendV6Data");
  if (v6 !== undefined && !v6.ok) return v6;
  return {
    ok: true,
    value: {
      publicIp,
      ...(typeof publicIpv6 === "string" ? { publicIpv6: formatIpv6(parseIpv6(publicIpv6) ?? 0n) } : {}),
      ...(backendType === undefined ? {} : { backendType }),
      ...data.value,
      ...(v6 === undefined ? {} : { v6: v6.value }),
    },
  };
}

export function sameAttrs(a: LeaseAttrs, b: LeaseAttrs): boolean {
  return (
    a.publicIp === b.publicIp &&
    a.backendType === b.backendType &&
    a.vni === b.vni &&
    a.vtepMac === b.vtepMac &&
    a.publicIpv6 === b.publicIpv6 &&
    a.v6?.vni === b.v6?.vni &&
    a.v6?.vtepMac === b.v6?.vtepMac &&
    (a.v6 === undefined) === (b.v6 === undefined)
  );
}
