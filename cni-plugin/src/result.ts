// The plugin's result in one internal shape (the 1.1.0 one), converted to the version the runtime asked for, and
// prevResults of any supported version parsed back into it (pure).
import { isRecord } from "#lib/records.js";
import { parseCidr, type Cidr } from "#lib/ipv4.js";
import { parseCidr6, type Cidr6 } from "#lib/ipv6.js";
import { familyOf } from "#lib/netlink/kernel.js";
import { CniCode, CniError } from "./cni-error.js";
import { atLeast, type CniVersion } from "./versions.js";

export interface ResultInterface {
  name: string;
  mac?: string;
  /** 1.1.0 only. */
  mtu?: number;
  sandbox?: string;
}

export interface ResultIp {
  /** CIDR: the address with its subnet's prefix length. */
  address: string;
  gateway?: string;
  interface?: number;
}

export interface ResultRoute {
  dst: string;
  gw?: string;
}

export interface Dns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface CniResult {
  interfaces: ResultInterface[];
  ips: ResultIp[];
  routes: ResultRoute[];
  dns: Dns;
}

/** The result as `version` spells it: 0.3.x/0.4.0 carry ips[].version "4" or "6"; only 1.1.0 has interfaces[].mtu. */
export function formatResult(result: CniResult, version: CniVersion): Record<string, unknown> {
  const withMtu = atLeast(version, "1.1.0");
  const legacy = !atLeast(version, "1.0.0");
  return {
    cniVersion: version,
    interfaces: result.interfaces.map((i) => {
      const out: Record<string, unknown> = { name: i.name };
      if (i.mac !== undefined) out.mac = i.mac;
      if (withMtu && i.mtu !== undefined) out.mtu = i.mtu;
      if (i.sandbox !== undefined) out.sandbox = i.sandbox;
      return out;
    }),
    ips: result.ips.map((ip) => {
      const out: Record<string, unknown> = legacy
        ? { version: String(familyOf(ip.address)), address: ip.address }
        : { address: ip.address };
      if (ip.gateway !== undefined) out.gateway = ip.gateway;
      if (ip.interface !== undefined) out.interface = ip.interface;
      return out;
    }),
    routes: result.routes.map((r) => (r.gw === undefined ? { dst: r.dst } : { dst: r.dst, gw: r.gw })),
    dns: { ...result.dns },
  };
}

function bad(field: string, allowed: string): CniError {
  return new CniError(CniCode.INVALID_CONFIG, `config field prevResult.${field} is invalid: ${allowed}`);
}

function optionalString(record: Record<string, unknown>, key: string, field: string): string | undefined {
  const value = record[key];
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw bad(field, "a string");
  return value;
}

/** A prevResult of any supported version (as another plugin or the runtime's cache wrote it) → the internal shape. */
export function parsePrevResult(value: unknown): CniResult {
  if (!isRecord(value)) throw bad("", "an object");
  const list = (key: string): unknown[] => {
    const items = value[key];
    if (items === undefined) return [];
    if (!Array.isArray(items)) throw bad(key, "an array");
    return items;
  };
  const interfaces = list("interfaces").map((item, n): ResultInterface => {
    if (!isRecord(item) || typeof item.name !== "string") throw bad(`interfaces[${n}].name`, "a string");
    const out: ResultInterface = { name: item.name };
    const mac = optionalString(item, "mac", `interfaces[${n}].mac`);
    if (mac !== undefined) out.mac = mac;
    const sandbox = optionalString(item, "sandbox", `interfaces[${n}].sandbox`);
    if (sandbox !== undefined) out.sandbox = sandbox;
    if (typeof item.mtu === "number") out.mtu = item.mtu;
    return out;
  });
  const ips = list("ips").map((item, n): ResultIp => {
    if (!isRecord(item) || typeof item.address !== "string" || parseAddress(item.address) === undefined) {
      throw bad(`ips[${n}].address`, "an IP CIDR such as 172.30.5.2/24 or fd30:0:0:5::2/64");
    }
    const out: ResultIp = { address: item.address };
    const gateway = optionalString(item, "gateway", `ips[${n}].gateway`);
    if (gateway !== undefined) out.gateway = gateway;
    if (item.interface !== undefined) {
      if (typeof item.interface !== "number" || !Number.isInteger(item.interface) || item.interface < 0)
        throw bad(`ips[${n}].interface`, "an index");
      out.interface = item.interface;
    }
    return out;
  });
  const routes = list("routes").map((item, n): ResultRoute => {
    if (!isRecord(item) || typeof item.dst !== "string") throw bad(`routes[${n}].dst`, "a CIDR");
    const gw = optionalString(item, "gw", `routes[${n}].gw`);
    return gw === undefined ? { dst: item.dst } : { dst: item.dst, gw };
  });
  const dns = isRecord(value.dns) ? (value.dns as Dns) : {};
  return { interfaces, ips, routes, dns };
}

/** An "addr/len" of either family; the IPv6 parser is loaded only for an IPv6 one. */
function parseAddress(text: string): Cidr | Cidr6 | undefined {
  return familyOf(text) === 4 ? parseCidr(text) : parseCidr6(text);
}

/** The addresses the result gives the interface named `ifname` inside the sandbox: the first of each family. */
export function podAddresses(result: CniResult, ifname: string): { ipv4?: Cidr; ipv6?: Cidr6 } {
  const found: { ipv4?: Cidr; ipv6?: Cidr6 } = {};
  for (const ip of result.ips) {
    const owner = ip.interface === undefined ? undefined : result.interfaces[ip.interface];
    if (owner !== undefined && owner.name !== ifname) continue;
    if (familyOf(ip.address) === 4) {
      const cidr = parseCidr(ip.address);
      if (cidr !== undefined) found.ipv4 ??= cidr;
    } else {
      const cidr = parseCidr6(ip.address);
      if (cidr !== undefined) found.ipv6 ??= cidr;
    }
  }
  return found;
}
