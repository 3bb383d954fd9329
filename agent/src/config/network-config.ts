// The network config stored at <prefix>/config, in flannel's JSON format. Parsing, defaults and validation follow
// flannel (docs in ../shared/reference/flannel.md) and every rejection names the field, its value and what is
// allowed. Pure: no I/O here.
import { InvalidConfigError } from "../../../lib/src/errors.js";
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
} from "../../../lib/src/ipv4.js";

export const BACKEND_TYPES = ["vxlan", "host-gw"] as const;
export type BackendType = (typeof BACKEND_TYPES)[number];

export const DEFAULT_NETWORK = "172.30.0.0/16";
export const DEFAULT_VNI = 1;
/** The IANA port is 4789; flannel and the Linux kernel default to 8472. */
export const DEFAULT_VXLAN_PORT = 8472;
export const MAX_VNI = 16_777_215;

export interface BackendConfig {
  readonly type: BackendType;
  readonly vni: number;
  readonly port: number;
  readonly directRouting: boolean;
}

export interface NetworkConfig {
  readonly network: Cidr;
  readonly subnetLen: number;
  /** First subnet's address (uint32) that may be leased. */
  readonly subnetMin: number;
  /** Last subnet's address (uint32) that may be leased. */
  readonly subnetMax: number;
  readonly backend: BackendConfig;
}

// Keys flannel knows and we accept but do not act on (so a flannel-written config still loads).
const IGNORED_TOP_KEYS = new Set(["EnableIPv4", "EnableNFTables"]);
const TOP_KEYS = new Set([
  "Network",
  "SubnetLen",
  "SubnetMin",
  "SubnetMax",
  "Backend",
  "EnableIPv6",
  ...IGNORED_TOP_KEYS,
]);
const BACKEND_KEYS = new Set(["Type", "VNI", "Port", "DirectRouting", "GBP", "Learning", "MTU", "MacPrefix"]);

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

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
  if (!isObject(value)) throw new InvalidConfigError("Backend", value, 'must be an object such as {"Type":"vxlan"}');
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
  if (!isObject(raw)) throw new InvalidConfigError("network config", raw, "must be a JSON object");
  checkKeys(raw, TOP_KEYS, "");
  if (raw.EnableIPv6 === true)
    throw new InvalidConfigError("EnableIPv6", true, "IPv6 is not supported yet; remove it or set false");
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
  return { network, subnetLen, subnetMin, subnetMax, backend: parseBackend(raw.Backend) };
}

/** flannel's JSON form with every default written out. */
export function formatNetworkConfig(config: NetworkConfig): string {
  const backend: Json = { Type: config.backend.type };
  if (config.backend.type === "vxlan") {
    backend.VNI = config.backend.vni;
    backend.Port = config.backend.port;
    backend.DirectRouting = config.backend.directRouting;
  }
  return JSON.stringify({
    Network: formatCidr(config.network),
    SubnetLen: config.subnetLen,
    SubnetMin: formatIpv4(config.subnetMin),
    SubnetMax: formatIpv4(config.subnetMax),
    Backend: backend,
  });
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
  return `${formatCidr(config.network)} (/${config.subnetLen} subnets ${formatIpv4(config.subnetMin)}–${formatIpv4(config.subnetMax)})`;
}
