// IPv4 addresses as unsigned 32-bit numbers, and CIDRs over them. Shared by the agent and the CNI plugin; kept
// dependency-free because the plugin pays every import on each pod operation (see docs/decisions/0003).

export interface Cidr {
  /** The address part as a uint32 (for a subnet: its first address). */
  readonly ip: number;
  readonly prefixLen: number;
}

const DOTTED_QUAD =
  /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** Strict dotted-quad parse (no leading zeros, no shorthand); undefined when it is not one. */
export function parseIpv4(text: string): number | undefined {
  const match = DOTTED_QUAD.exec(text);
  if (match === null) return undefined;
  return ((Number(match[1]) << 24) | (Number(match[2]) << 16) | (Number(match[3]) << 8) | Number(match[4])) >>> 0;
}

export function isIpv4(text: string): boolean {
  return parseIpv4(text) !== undefined;
}

export function formatIpv4(ip: number): string {
  return `${(ip >>> 24) & 255}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}

export function maskOf(prefixLen: number): number {
  return prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
}

/** Number of addresses in a prefix (2^(32-len)). */
export function sizeOf(prefixLen: number): number {
  return 2 ** (32 - prefixLen);
}

/** Parses "a.b.c.d/len"; undefined when malformed. Host bits are kept: see isCanonical(). */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf("/");
  if (slash < 0) return undefined;
  const ip = parseIpv4(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  if (ip === undefined || !/^(3[0-2]|[12]?\d)$/.test(lenText)) return undefined;
  return { ip, prefixLen: Number(lenText) };
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIpv4(cidr.ip)}/${cidr.prefixLen}`;
}

/** True when no host bits are set ("172.30.0.0/16", not "172.30.1.0/16"). */
export function isCanonical(cidr: Cidr): boolean {
  return (cidr.ip & maskOf(cidr.prefixLen)) >>> 0 === cidr.ip;
}

export function canonical(cidr: Cidr): Cidr {
  return { ip: (cidr.ip & maskOf(cidr.prefixLen)) >>> 0, prefixLen: cidr.prefixLen };
}

export function containsIp(cidr: Cidr, ip: number): boolean {
  return (ip & maskOf(cidr.prefixLen)) >>> 0 === (cidr.ip & maskOf(cidr.prefixLen)) >>> 0;
}

export function containsCidr(outer: Cidr, inner: Cidr): boolean {
  return inner.prefixLen >= outer.prefixLen && containsIp(outer, inner.ip);
}

export function sameCidr(a: Cidr, b: Cidr): boolean {
  return a.ip === b.ip && a.prefixLen === b.prefixLen;
}

/** The last address of the prefix (the broadcast address for a subnet). */
export function lastAddress(cidr: Cidr): number {
  return (canonical(cidr).ip + sizeOf(cidr.prefixLen) - 1) >>> 0;
}
