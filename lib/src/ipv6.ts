// IPv6 addresses as 128-bit bigints, and CIDRs over them: the counterpart of ipv4.ts. Parsing and the RFC 5952 text
// form come from ip-num (decision 0003 named it for IPv6); what is left here is prefix arithmetic on bigints.
// ip-num costs ~25 ms to load, so it is loaded on first use: the CNI plugin, started per pod operation, pays it only
// on an IPv6 network (decision 0003).
import { createRequire } from "node:module";
import { isIPv6 } from "node:net";

type IpNum = typeof import("ip-num");
let loaded: IpNum | undefined;
function ipNum(): IpNum {
  // A require of our own: the bundler leaves it to run time, so nothing of ip-num runs at start.
  loaded ??= createRequire(import.meta.url)("ip-num") as IpNum;
  return loaded;
}

export interface Cidr6 {
  /** The address part as a 128-bit unsigned bigint (for a subnet: its first address). */
  readonly ip: bigint;
  readonly prefixLen: number;
}

const ALL_ONES = (1n << 128n) - 1n;

/**
 * Strict parse of a textual IPv6 address; undefined when it is not one. Zone ids ("fe80::1%eth0") and embedded
 * dotted IPv4 ("::ffff:1.2.3.4") are refused: neither belongs in a pod network or a lease.
 */
export function parseIpv6(text: string): bigint | undefined {
  if (!isIPv6(text) || text.includes("%") || text.includes(".")) return undefined;
  return ipNum().IPv6.fromString(text).value;
}

export function isIpv6(text: string): boolean {
  return parseIpv6(text) !== undefined;
}

/** RFC 5952: lowercase, leading zeros dropped, the first longest run of zero groups as "::" (what `ip -6` prints). */
export function formatIpv6(ip: bigint): string {
  const { IPv6, collapseIPv6Number } = ipNum();
  return collapseIPv6Number(IPv6.fromBigInt(ip).toString());
}

export function maskOf6(prefixLen: number): bigint {
  return prefixLen === 0 ? 0n : (ALL_ONES << BigInt(128 - prefixLen)) & ALL_ONES;
}

/** Number of addresses in a prefix (2^(128-len)). */
export function sizeOf6(prefixLen: number): bigint {
  return 1n << BigInt(128 - prefixLen);
}

/** Parses "addr/len"; undefined when malformed. Host bits are kept: see isCanonical6(). */
export function parseCidr6(text: string): Cidr6 | undefined {
  const slash = text.lastIndexOf("/");
  if (slash < 0) return undefined;
  const ip = parseIpv6(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  if (ip === undefined || !/^(12[0-8]|1[01]\d|[1-9]?\d)$/.test(lenText)) return undefined;
  return { ip, prefixLen: Number(lenText) };
}

export function formatCidr6(cidr: Cidr6): string {
  return `${formatIpv6(cidr.ip)}/${cidr.prefixLen}`;
}

export function isCanonical6(cidr: Cidr6): boolean {
  return (cidr.ip & maskOf6(cidr.prefixLen)) === cidr.ip;
}

export function canonical6(cidr: Cidr6): Cidr6 {
  return { ip: cidr.ip & maskOf6(cidr.prefixLen), prefixLen: cidr.prefixLen };
}

export function containsIp6(cidr: Cidr6, ip: bigint): boolean {
  const mask = maskOf6(cidr.prefixLen);
  return (ip & mask) === (cidr.ip & mask);
}

export function containsCidr6(outer: Cidr6, inner: Cidr6): boolean {
  return inner.prefixLen >= outer.prefixLen && containsIp6(outer, inner.ip);
}

export function sameCidr6(a: Cidr6, b: Cidr6): boolean {
  return a.ip === b.ip && a.prefixLen === b.prefixLen;
}

export function overlaps6(a: Cidr6, b: Cidr6): boolean {
  return containsCidr6(a, b) || containsCidr6(b, a);
}

const LINK_LOCAL: Cidr6 = { ip: 0xfe80n << 112n, prefixLen: 10 };
const MULTICAST: Cidr6 = { ip: 0xffn << 120n, prefixLen: 8 };
const LOOPBACK = 1n;

/** fe80::/10: an address the kernel gives every link itself, meaningless beyond it. */
export function isLinkLocal6(text: string): boolean {
  const ip = parseIpv6(text);
  return ip !== undefined && containsIp6(LINK_LOCAL, ip);
}

/**
 * A unicast address other nodes can be sent to: not ::, ::1, link-local or multicast (ULA fd00::/8 is fine). False for
 * anything that is not an IPv6 address.
 */
export function isRoutableUnicast6(text: string): boolean {
  const ip = parseIpv6(text);
  return (
    ip !== undefined && ip !== 0n && ip !== LOOPBACK && !containsIp6(LINK_LOCAL, ip) && !containsIp6(MULTICAST, ip)
  );
}
