// Conversions between the port's plain data (dotted IPv4 strings, "aa:bb:…" MACs, named scopes) and the byte and
// enum shapes rtnetlink uses. Inputs are validated here so that a typo fails with a named field instead of EINVAL.
import { InvalidArgumentError } from "../errors.js";
import type { NeighborState, RouteScope, RouteType } from "./kernel.js";

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

export function ipv4ToBytes(value: string, field: string): Buffer {
  const match = IPV4.exec(value);
  const octets = match?.slice(1).map(Number);
  if (octets === undefined || octets.some((octet) => octet > 255)) {
    throw new InvalidArgumentError(field, value, "an IPv4 address such as 10.244.1.0");
  }
  return Buffer.from(octets);
}

/** Undefined for anything that is not 4 bytes (the caller skips non-IPv4 records). */
export function bytesToIpv4(bytes: Uint8Array | undefined): string | undefined {
  return bytes?.length === 4 ? Array.from(bytes).join(".") : undefined;
}

export function macToBytes(value: string, field: string): Buffer {
  if (!MAC.test(value)) throw new InvalidArgumentError(field, value, 'a MAC address such as "0a:58:0a:f4:01:00"');
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
