// Conversions between the port's plain data (IPv4 and IPv6 strings, "aa:bb:…" MACs, named scopes) and the byte and
// enum shapes rtnetlink uses. Inputs are validated here so that a typo fails with a named field instead of EINVAL.
import { createRequire } from "node:module";
import { InvalidArgumentError } from "../errors.js";
import { isMac } from "../names.js";
import { familyOf, type IpFamily, type NeighborState, type RouteScope, type RouteType } from "./kernel.js";

const require = createRequire(import.meta.url);
let net: typeof import("node:net") | undefined;

/** node:net on first use: loading it costs each CNI plugin run ~4 ms (docs/decisions/0005), and only IPv6 needs it. */
function isIPv6(value: string): boolean {
  net ??= require("node:net") as typeof import("node:net");
  return net.isIPv6(value);
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const IPV4_EXAMPLE = "an IPv4 address such as 10.244.1.0";
const IPV6_EXAMPLE = "an IPv6 address such as fd30:0:0:5::";

export function ipv4ToBytes(value: string, field: string, allowed = IPV4_EXAMPLE): Buffer {
  const match = IPV4.exec(value);
  const octets = match?.slice(1).map(Number);
  if (octets === undefined || octets.some((octet) => octet > 255)) {
    throw new InvalidArgumentError(field, value, allowed);
  }
  return Buffer.from(octets);
}

/** Undefined for anything that is not 4 bytes (the caller skips non-IPv4 records). */
export function bytesToIpv4(bytes: Uint8Array | undefined): string | undefined {
  return bytes?.length === 4 ? Array.from(bytes).join(".") : undefined;
}

/**
 * 16 bytes of an IPv6 address in hex-group notation. Zone ids and IPv4-mapped addresses are refused: neither means
 * anything to rtnetlink (the link is given by index, an IPv4 destination by its own family).
 */
export function ipv6ToBytes(value: string, field: string): Buffer {
  if (value.includes("%"))
    throw new InvalidArgumentError(field, value, `${IPV6_EXAMPLE}, without a zone id (the link is given apart)`);
  if (!isIPv6(value)) throw new InvalidArgumentError(field, value, IPV6_EXAMPLE);
  const [head = "", tail] = value.split("::");
  const headGroups = groups(head);
  const tailGroups = tail === undefined ? [] : groups(tail);
  const zeros = new Array<number>(8 - headGroups.length - tailGroups.length).fill(0);
  const bytes = Buffer.alloc(16);
  [...headGroups, ...(tail === undefined ? [] : zeros), ...tailGroups].forEach((group, i) => {
    bytes.writeUInt16BE(group, 2 * i);
  });
  if (isIpv4Mapped(bytes))
    throw new InvalidArgumentError(field, value, "an IPv6 address; an IPv4-mapped one must be given as plain IPv4");
  return bytes;
}

/** The 16-bit groups of one side of "::"; a trailing dotted quad (already validated by isIPv6) counts as two. */
function groups(part: string): number[] {
  if (part === "") return [];
  return part.split(":").flatMap((group) => {
    if (!group.includes(".")) return [parseInt(group, 16)];
    const [a = 0, b = 0, c = 0, d = 0] = group.split(".").map(Number);
    return [(a << 8) | b, (c << 8) | d];
  });
}

function isIpv4Mapped(bytes: Uint8Array): boolean {
  return bytes.subarray(0, 10).every((byte) => byte === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
}

/**
 * RFC 5952 text, as `ip -6` prints it: lowercase, no leading zeros, the longest run (the first of equals) of two or
 * more zero groups as "::"; IPv4-mapped addresses end in a dotted quad. Undefined for anything but 16 bytes.
 */
export function bytesToIpv6(bytes: Uint8Array | undefined): string | undefined {
  if (bytes?.length !== 16) return undefined;
  if (isIpv4Mapped(bytes)) return `::ffff:${Array.from(bytes.subarray(12)).join(".")}`;
  const words = Array.from({ length: 8 }, (_, i) => ((bytes[2 * i] ?? 0) << 8) | (bytes[2 * i + 1] ?? 0));
  let best = { start: -1, length: 1 };
  for (let start = 0; start < 8; start++) {
    let length = 0;
    while (start + length < 8 && words[start + length] === 0) length++;
    if (length > best.length) best = { start, length };
  }
  const hex = (part: number[]): string => part.map((word) => word.toString(16)).join(":");
  if (best.start < 0) return hex(words);
  return `${hex(words.slice(0, best.start))}::${hex(words.slice(best.start + best.length))}`;
}

/** An IPv4 or IPv6 address, its family following the string. */
export function ipToBytes(value: string, field: string): { family: IpFamily; bytes: Buffer } {
  const family = familyOf(value);
  if (family === 6) return { family, bytes: ipv6ToBytes(value, field) };
  return { family, bytes: ipv4ToBytes(value, field, `${IPV4_EXAMPLE}, or ${IPV6_EXAMPLE}`) };
}

/** Bytes of the given family (by length when none is given) → text; undefined for anything else. */
export function bytesToIp(bytes: Uint8Array | undefined, family?: IpFamily): string | undefined {
  if (family === 4 || (family === undefined && bytes?.length === 4)) return bytesToIpv4(bytes);
  return bytesToIpv6(bytes);
}

/** The longest prefix of the family: 32 or 128. */
export function maxPrefixLen(family: IpFamily): number {
  return family === 6 ? 128 : 32;
}

export function macToBytes(value: string, field: string): Buffer {
  if (!isMac(value.toLowerCase()))
    throw new InvalidArgumentError(field, value, 'a MAC address such as "0a:58:0a:f4:01:00"');
  return Buffer.from(value.replaceAll(":", ""), "hex");
}

export function bytesToMac(bytes: Uint8Array | undefined): string | undefined {
  if (bytes?.length !== 6) return undefined;
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join(":");
}

/** VXLAN's IFLA_VXLAN_PORT is the one attribute carried in network byte order. */
export function portToBytes(port: number): Buffer {
  checkInteger(port, "port", 1, 65535);
  const bytes = Buffer.alloc(2);
  bytes.writeUInt16BE(port);
  return bytes;
}

export function bytesToPort(bytes: Uint8Array | undefined): number | undefined {
  return bytes?.length === 2 ? Buffer.from(bytes).readUInt16BE(0) : undefined;
}

export function checkInteger(value: number, field: string, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(field, value, `an integer from ${min} to ${max}`);
  }
  return value;
}

export function checkIndex(index: number, field = "index"): number {
  return checkInteger(index, field, 1, 0x7fffffff);
}

/** Linux interface names: 1–15 bytes, no "/", ":" or whitespace. */
export function checkLinkName(name: string, field = "name"): string {
  if (!/^[^/:\s]{1,15}$/.test(name) || Buffer.byteLength(name) > 15 || name === "." || name === "..") {
    throw new InvalidArgumentError(field, name, "an interface name of 1-15 characters without '/', ':' or spaces");
  }
  return name;
}

// The netlink package hands enum fields back as the enum's key name when it knows the value ("LINK"), else as the
// number; these tables and `enumNumber` turn either form into the number before we name it ourselves.
const SCOPES: ReadonlyMap<number, RouteScope> = new Map([
  [0, "universe"],
  [200, "site"],
  [253, "link"],
  [254, "host"],
  [255, "nowhere"],
] as const);
const SCOPE_NUMBERS: Readonly<Record<RouteScope, number>> = {
  universe: 0,
  site: 200,
  link: 253,
  host: 254,
  nowhere: 255,
};
const ROUTE_TYPES: readonly RouteType[] = [
  "unspec",
  "unicast",
  "local",
  "broadcast",
  "anycast",
  "multicast",
  "blackhole",
  "unreachable",
  "prohibit",
  "throw",
  "nat",
  "xresolve",
];

/**
 * The package types some open-ended kernel numbers as closed TS enums (rtm_protocol takes any byte, e.g. our own
 * 0x91; nlmsg_type comes straight off the wire). This is the one place such a number is let into those types.
 */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- E names the target enum at the call site
export function openEnum<E extends number>(value: number): E {
  return value as E;
}

export function enumNumber(value: number | string | undefined, names: Readonly<Record<string, unknown>>): number {
  if (typeof value === "number") return value;
  if (value === undefined) return 0;
  const number = names[value];
  return typeof number === "number" ? number : 0;
}

/** Unnamed user-defined scopes (1–199, 201–252) have no name of their own; they are reported as "site". */
export function scopeName(scope: number): RouteScope {
  return SCOPES.get(scope) ?? "site";
}

export function scopeNumber(scope: RouteScope): number {
  return SCOPE_NUMBERS[scope];
}

export function routeTypeName(type: number): RouteType {
  return ROUTE_TYPES[type] ?? "unspec";
}

/** NUD_* bits as the package parses them (an object of flags) → the one state name that matters. */
export function neighborStateName(state: Readonly<Partial<Record<NeighborState, true>>> | undefined): NeighborState {
  const order: readonly Exclude<NeighborState, "none">[] = [
    "permanent",
    "noarp",
    "reachable",
    "stale",
    "delay",
    "probe",
    "failed",
    "incomplete",
  ];
  return order.find((name) => state?.[name] === true) ?? "none";
}
