// The network config stored at <prefix>/config, in flannel's JSON format. Parsing, defaults and validation follow
// flannel (docs in ../shared/reference/flannel.md) and every rejection names the field, its value and what is
// allowed. Pure: no I/O here.
import { InvalidConfigError } from "#lib/errors.js";
import { isRecord } from "#lib/records.js";
import { BACKEND_TYPES, type BackendType } from "../dataplane/backends/registry.js";
import type { BackendSettings } from "../dataplane/backends/backend.js";
import {
  canonical,
  formatCidr,
  formatIpv4,
  isCanonical,
  maskOf,
  parseCidr,
  parseIpv4,
  sizeOf,
  containsIp,
  type Cidr,
} from "#lib/ipv4.js";
import {
  canonical6,
  containsIp6,
  formatCidr6,
  formatIpv6,
  isCanonical6,
  maskOf6,
  parseCidr6,
  parseIpv6,
  sizeOf6,
  type Cidr6,
} from "#lib/ipv6.js";

export const DEFAULT_VNI = 1;
/** The IANA port is 4789; flannel and the Linux kernel default to 8472. */
export const DEFAULT_VXLAN_PORT = 8472;
export const MAX_VNI = 16_777_215;

/** The IPv4 network of an IPv6-only config: empty, as flannel's zero IP4Net. */
const NO_NETWORK: Cidr = { ip: 0, prefixLen: 0 };

/** flannel's Backend object; Type is one of the backends in dataplane/backends/registry.ts. */
export interface BackendConfig extends BackendSettings {
  readonly type: BackendType;
}

/** The IPv6 pod network (EnableIPv6): flannel's IPv6Network, IPv6SubnetLen, IPv6SubnetMin/Max. */
export interface Ipv6Pool {
  readonly network: Cidr6;
  readonly subnetLen: number;
  /** First subnet's address that may be leased. */
  readonly subnetMin: bigint;
  /** Last subnet's address that may be leased. */
  readonly subnetMax: bigint;
}

export interface NetworkConfig {
  /**
   * EnableIPv4 (default true). False: an IPv6-only network, where `network`, `subnetLen`, `subnetMin` and `subnetMax`
   * are the empty 0.0.0.0/0 and a lease key's IPv4 half is flannel's "0.0.0.0-0".
   */
  readonly enableIPv4: boolean;
  /** The IPv6 pod network when EnableIPv6 is true, else undefined. */
  readonly ipv6: Ipv6Pool | undefined;
  readonly network: Cidr;
  readonly subnetLen: number;
  /** First subnet's address (uint32) that may be leased. */
  readonly subnetMin: number;
  /** Last subnet's address (uint32) that may be leased. */
  readonly subnetMax: number;
  readonly backend: BackendConfig;
}

// Keys flannel knows and we accept but do not act on (so a flannel-written config still loads).
const IGNORED_TOP_KEYS = new Set(["EnableNFTables"]);
const IPV6_KEYS = ["IPv6Network", "IPv6SubnetLen", "IPv6SubnetMin", "IPv6SubnetMax"] as const;
const TOP_KEYS = new Set([
  "Network",
  "SubnetLen",
  "SubnetMin",
  "SubnetMax",
  "Backend",
  "EnableIPv4",
  "EnableIPv6",
  ...IPV6_KEYS,
  ...IGNORED_TOP_KEYS,
]);
const BACKEND_KEYS = new Set(["Type", "VNI", "Port", "DirectRouting", "GBP", "Learning", "MTU", "MacPrefix"]);

type Json = Record<string, unknown>;

/** Parses the JSON text stored in etcd. */
export function parseNetworkConfig(text: string): NetworkConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new InvalidConfigError(
      "network config",
      text.length > 80 ? `${text.slice(0, 80)}…` : text,
      `must be JSON (${(error as Error).message})`,
    );
  }
  return validateNetworkConfig(raw);
}

function integerField(obj: Json, field: string, label: string, min: number, max: number): number | undefined {
  const value = obj[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidConfigError(label, value, `must be an integer between ${min} and ${max}`);
  }
  return value;
}

function checkKeys(obj: Json, allowed: Set<string>, where: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.has(key)) {
      throw new InvalidConfigError(
        `${where}${key}`,
        obj[key],
        `is not a known field; allowed: ${[...allowed].join(", ")}`,
      );
    }
  }
}

function parseBackend(value: unknown): BackendConfig {
  if (value === undefined || value === null) {
    return { type: "vxlan", vni: DEFAULT_VNI, port: DEFAULT_VXLAN_PORT, directRouting: false };
  }
  if (!isRecord(value)) throw new InvalidConfigError("Backend", value, 'must be an object such as {"Type":"vxlan"}');
  checkKeys(value, BACKEND_KEYS, "Backend.");
  const type = value.Type ?? "vxlan";
  if (typeof type !== "string" || !(BACKEND_TYPES as readonly string[]).includes(type)) {
    throw new InvalidConfigError("Backend.Type", type, `must be one of ${BACKEND_TYPES.join(", ")}`);
  }
  // flannel treats 0 as "use the default" for both.
  const vni = integerField(value, "VNI", "Backend.VNI", 0, MAX_VNI) || DEFAULT_VNI;
  const port = integerField(value, "Port", "Backend.Port", 0, 65535) || DEFAULT_VXLAN_PORT;
  const directRouting = value.DirectRouting ?? false;
  if (typeof directRouting !== "boolean")
    throw new InvalidConfigError("Backend.DirectRouting", directRouting, "must be true or false");
  return { type: type as BackendType, vni, port, directRouting };
}

function parseNetwork(value: unknown): Cidr {
  if (value === undefined || value === null || value === "") {
    throw new InvalidConfigError("Network", value, "is required: an IPv4 CIDR such as 172.30.0.0/16");
  }
  const cidr = typeof value === "string" ? parseCidr(value) : undefined;
  if (cidr === undefined) throw new InvalidConfigError("Network", value, "must be an IPv4 CIDR such as 172.30.0.0/16");
  if (!isCanonical(cidr)) {
    throw new InvalidConfigError(
      "Network",
      value,
      `has host bits set; the network address is ${formatCidr(canonical(cidr))}`,
    );
  }
  if (cidr.prefixLen > 28)
    throw new InvalidConfigError("Network", value, "is too small: the prefix length must be /28 or shorter");
  return cidr;
}

function parseBound(
  obj: Json,
  field: "SubnetMin" | "SubnetMax",
  network: Cidr,
  subnetLen: number,
  fallback: number,
): number {
  const value = obj[field];
  if (value === undefined || value === null || value === "") return fallback;
  const ip = typeof value === "string" ? parseIpv4(value) : undefined;
  if (ip === undefined) throw new InvalidConfigError(field, value, "must be an IPv4 address such as 172.30.1.0");
  if (!containsIp(network, ip))
    throw new InvalidConfigError(field, value, `must be inside Network ${formatCidr(network)}`);
  if ((ip & maskOf(subnetLen)) >>> 0 !== ip) {
    throw new InvalidConfigError(field, value, `must be on a /${subnetLen} (SubnetLen) boundary`);
  }
  return ip;
}

/** Validates a decoded config object and fills in flannel's defaults. */
export function validateNetworkConfig(raw: unknown): NetworkConfig {
  if (!isRecord(raw)) throw new InvalidConfigError("network config", raw, "must be a JSON object");
  checkKeys(raw, TOP_KEYS, "");
  const enableIPv4 = booleanField(raw, "EnableIPv4", true);
  const enableIPv6 = booleanField(raw, "EnableIPv6", false);
  if (!enableIPv4 && !enableIPv6)
    throw new InvalidConfigError(
      "EnableIPv4",
      false,
      "leaves no network: set EnableIPv6 true (IPv6-only) or remove it",
    );
  // As flannel: the IPv6 fields count only with EnableIPv6, the IPv4 ones only with EnableIPv4.
  const ipv6 = enableIPv6 ? parseIpv6Pool(raw) : undefined;
  const backend = parseBackend(raw.Backend);
  if (!enableIPv4) return { enableIPv4, ipv6, network: NO_NETWORK, subnetLen: 0, subnetMin: 0, subnetMax: 0, backend };
  const network = parseNetwork(raw.Network);

  const given = integerField(raw, "SubnetLen", "SubnetLen", 0, 32);
  let subnetLen: number;
  if (given === undefined || given === 0) {
    subnetLen = network.prefixLen <= 22 ? 24 : network.prefixLen + 2;
  } else {
    const low = network.prefixLen + 2;
    if (given < low || given > 30) {
      throw new InvalidConfigError(
        "SubnetLen",
        given,
        `must be between ${low} and 30 for Network ${formatCidr(network)} (the network must hold at least four subnets)`,
      );
    }
    subnetLen = given;
  }

  const step = sizeOf(subnetLen);
  // The first subnet is skipped by default: its .0 would collide with the network address.
  const subnetMin = parseBound(raw, "SubnetMin", network, subnetLen, network.ip + step);
  const subnetMax = parseBound(raw, "SubnetMax", network, subnetLen, network.ip + sizeOf(network.prefixLen) - step);
  if (subnetMin > subnetMax) {
    throw new InvalidConfigError(
      "SubnetMin",
      formatIpv4(subnetMin),
      `must not be above SubnetMax ${formatIpv4(subnetMax)}`,
    );
  }
  return { enableIPv4, ipv6, network, subnetLen, subnetMin, subnetMax, backend };
}

function booleanField(obj: Json, field: string, fallback: boolean): boolean {
  const value = obj[field];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "boolean") throw new InvalidConfigError(field, value, "must be true or false");
  return value;
}

function parseIpv6Network(value: unknown): Cidr6 {
  if (value === undefined || value === null || value === "")
    throw new InvalidConfigError("IPv6Network", value, "is required with EnableIPv6: an IPv6 CIDR such as fd30::/56");
  const cidr = typeof value === "string" ? parseCidr6(value) : undefined;
  if (cidr === undefined) throw new InvalidConfigError("IPv6Network", value, "must be an IPv6 CIDR such as fd30::/56");
  if (!isCanonical6(cidr))
    throw new InvalidConfigError(
      "IPv6Network",
      value,
      `has host bits set; the network address is ${formatCidr6(canonical6(cidr))}`,
    );
  if (cidr.prefixLen > 124)
    throw new InvalidConfigError("IPv6Network", value, "is too small: the prefix length must be /124 or shorter");
  return cidr;
}

function parseIpv6Bound(
  obj: Json,
  field: "IPv6SubnetMin" | "IPv6SubnetMax",
  pool: Cidr6,
  len: number,
  fallback: bigint,
): bigint {
  const value = obj[field];
  if (value === undefined || value === null || value === "") return fallback;
  const ip = typeof value === "string" ? parseIpv6(value) : undefined;
  if (ip === undefined) throw new InvalidConfigError(field, value, "must be an IPv6 address such as fd30:0:0:1::");
  if (!containsIp6(pool, ip))
    throw new InvalidConfigError(field, value, `must be inside IPv6Network ${formatCidr6(pool)}`);
  if ((ip & maskOf6(len)) !== ip)
    throw new InvalidConfigError(field, value, `must be on a /${len} (IPv6SubnetLen) boundary`);
  return ip;
}

/** flannel's rules for the IPv6 pool, on 128 bits: default /64 subnets, at least four of them, the first skipped. */
function parseIpv6Pool(raw: Json): Ipv6Pool {
  const network = parseIpv6Network(raw.IPv6Network);
  const given = integerField(raw, "IPv6SubnetLen", "IPv6SubnetLen", 0, 128);
  let subnetLen: number;
  if (given === undefined || given === 0) {
    subnetLen = network.prefixLen <= 62 ? 64 : network.prefixLen + 2;
  } else {
    const low = network.prefixLen + 2;
    if (given < low || given > 126)
      throw new InvalidConfigError(
        "IPv6SubnetLen",
        given,
        `must be between ${low} and 126 for IPv6Network ${formatCidr6(network)} (the network must hold at least four subnets)`,
      );
    subnetLen = given;
  }
  const step = sizeOf6(subnetLen);
  const subnetMin = parseIpv6Bound(raw, "IPv6SubnetMin", network, subnetLen, network.ip + step);
  const subnetMax = parseIpv6Bound(
    raw,
    "IPv6SubnetMax",
    network,
    subnetLen,
    network.ip + sizeOf6(network.prefixLen) - step,
  );
  if (subnetMin > subnetMax)
    throw new InvalidConfigError(
      "IPv6SubnetMin",
      formatIpv6(subnetMin),
      `must not be above IPv6SubnetMax ${formatIpv6(subnetMax)}`,
    );
  return { network, subnetLen, subnetMin, subnetMax };
}

/** flannel's JSON form with every default written out. */
export function formatNetworkConfig(config: NetworkConfig): string {
  const backend: Json = { Type: config.backend.type };
  if (config.backend.type === "vxlan") {
    backend.VNI = config.backend.vni;
    backend.Port = config.backend.port;
    backend.DirectRouting = config.backend.directRouting;
  }
  const ipv6 =
    config.ipv6 === undefined
      ? {}
      : {
          EnableIPv6: true,
          IPv6Network: formatCidr6(config.ipv6.network),
          IPv6SubnetLen: config.ipv6.subnetLen,
          IPv6SubnetMin: formatIpv6(config.ipv6.subnetMin),
          IPv6SubnetMax: formatIpv6(config.ipv6.subnetMax),
        };
  const ipv4 = config.enableIPv4
    ? {
        Network: formatCidr(config.network),
        SubnetLen: config.subnetLen,
        SubnetMin: formatIpv4(config.subnetMin),
        SubnetMax: formatIpv4(config.subnetMax),
      }
    : { EnableIPv4: false };
  return JSON.stringify({ ...ipv4, ...ipv6, Backend: backend });
}

/** How many subnets the pool holds. */
export function poolSize(config: NetworkConfig): number {
  return (config.subnetMax - config.subnetMin) / sizeOf(config.subnetLen) + 1;
}

/** True when the subnet is one the config could hand out (inside the pool, right length, aligned). */
export function subnetInPool(config: NetworkConfig, subnet: Cidr): boolean {
  return (
    subnet.prefixLen === config.subnetLen &&
    isCanonical(subnet) &&
    subnet.ip >= config.subnetMin &&
    subnet.ip <= config.subnetMax
  );
}

export function poolDescription(config: NetworkConfig): string {
  const v4 = `${formatCidr(config.network)} (/${config.subnetLen} subnets ${formatIpv4(config.subnetMin)}–${formatIpv4(config.subnetMax)})`;
  const v6 = config.ipv6;
  const v6Text =
    v6 === undefined
      ? ""
      : `${formatCidr6(v6.network)} (/${v6.subnetLen} subnets ${formatIpv6(v6.subnetMin)}–${formatIpv6(v6.subnetMax)})`;
  if (!config.enableIPv4) return v6Text;
  return v6 === undefined ? v4 : `${v4} and ${v6Text}`;
}

/** How many IPv6 subnets the pool holds (a Number: past 2^53 it is approximate, which only a message shows). */
export function pool6Size(pool: Ipv6Pool): number {
  return Number((pool.subnetMax - pool.subnetMin) / sizeOf6(pool.subnetLen) + 1n);
}

/** True when the IPv6 subnet is one the config could hand out (inside the IPv6 pool, right length, aligned). */
export function subnet6InPool(pool: Ipv6Pool, subnet: Cidr6): boolean {
  return (
    subnet.prefixLen === pool.subnetLen &&
    isCanonical6(subnet) &&
    subnet.ip >= pool.subnetMin &&
    subnet.ip <= pool.subnetMax
  );
}
