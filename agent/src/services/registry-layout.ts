// Where the service registry lives in etcd, beside flannel's keys (docs/operations.md, ETCD KEYS), and the service
// network's config (pure):
//   <prefix>/config                                    {"clusterIPRange":"10.254.0.0/16","clusterDomain":"cluster.local","dnsClusterIP":"10.254.0.10"}
//   <prefix>/services/<namespace>/<name>               a v1 Service (spec.clusterIP allocated)
//   <prefix>/clusterips/<ip>                           "<namespace>/<name>": the allocation, written in the same txn
//   <prefix>/endpoints/<namespace>/<name>              a v1 Endpoints, for a Service without a selector
//   <prefix>/endpointslices/<namespace>/<name>/<owner> more endpoints of such a Service, each kept by its owner on
//                                                      the owner's etcd lease (a DNS server adds itself this way)
//   <prefix>/pods/<node subnet>/<containerID>/<ifname> a pod its node's agent wired, on that node's etcd lease
import { InvalidConfigError } from "#lib/errors.js";
import {
  containsIp,
  formatCidr,
  formatIpv4,
  isCanonical,
  lastAddress,
  parseCidr,
  parseIpv4,
  type Cidr,
} from "#lib/ipv4.js";
import { isRecord } from "#lib/records.js";

export const DEFAULT_REGISTRY_PREFIX = "/trellis";
export const DEFAULT_CLUSTER_IP_RANGE = "10.254.0.0/16";
export const DEFAULT_CLUSTER_DOMAIN = "cluster.local";
/** The cluster DNS Service's address (the tenth, as kubeadm's default range has it). */
export const DEFAULT_DNS_CLUSTER_IP = "10.254.0.10";

export interface ServiceNetworkConfig {
  readonly clusterIPRange: Cidr;
  readonly clusterDomain: string;
  readonly dnsClusterIP: number;
}

export class RegistryLayout {
  constructor(readonly prefix: string) {}

  get config(): string {
    return `${this.prefix}/config`;
  }
  get services(): string {
    return `${this.prefix}/services/`;
  }
  get clusterIps(): string {
    return `${this.prefix}/clusterips/`;
  }
  get endpointsPrefix(): string {
    return `${this.prefix}/endpoints/`;
  }
  get pods(): string {
    return `${this.prefix}/pods/`;
  }
  get slices(): string {
    return `${this.prefix}/endpointslices/`;
  }
  /** Everything of the registry: what an agent or DNS server watches. */
  get all(): string {
    return `${this.prefix}/`;
  }

  service(namespace: string, name: string): string {
    return `${this.services}${namespace}/${name}`;
  }
  clusterIp(ip: number): string {
    return `${this.clusterIps}${formatIpv4(ip)}`;
  }
  endpoints(namespace: string, name: string): string {
    return `${this.endpointsPrefix}${namespace}/${name}`;
  }
  slice(namespace: string, name: string, owner: string): string {
    return `${this.slices}${namespace}/${name}/${owner}`;
  }
  /** "172.30.5.0-24": a node is named by its lease's key, as flannel names it. */
  nodePods(node: string): string {
    return `${this.pods}${node}/`;
  }
  pod(node: string, containerId: string, ifname: string): string {
    return `${this.nodePods(node)}${containerId}/${ifname}`;
  }

  /** What a registry key names, or undefined for keys of no kind we know. */
  classify(key: string): RegistryKey | undefined {
    if (key === this.config) return { kind: "config" };
    const rest = (prefix: string): string[] | undefined =>
      key.startsWith(prefix) ? key.slice(prefix.length).split("/") : undefined;
    const service = rest(this.services);
    if (service?.length === 2) return { kind: "service", namespace: service[0] ?? "", name: service[1] ?? "" };
    const endpoints = rest(this.endpointsPrefix);
    if (endpoints?.length === 2) return { kind: "endpoints", namespace: endpoints[0] ?? "", name: endpoints[1] ?? "" };
    const slice = rest(this.slices);
    if (slice?.length === 3)
      return { kind: "slice", namespace: slice[0] ?? "", name: slice[1] ?? "", owner: slice[2] ?? "" };
    const pod = rest(this.pods);
    if (pod?.length === 3) return { kind: "pod", node: pod[0] ?? "", containerId: pod[1] ?? "", ifname: pod[2] ?? "" };
    const ip = rest(this.clusterIps);
    if (ip?.length === 1) return { kind: "clusterip", ip: ip[0] ?? "" };
    return undefined;
  }
}

export type RegistryKey =
  | { readonly kind: "config" }
  | { readonly kind: "service" | "endpoints"; readonly namespace: string; readonly name: string }
  | { readonly kind: "slice"; readonly namespace: string; readonly name: string; readonly owner: string }
  | { readonly kind: "pod"; readonly node: string; readonly containerId: string; readonly ifname: string }
  | { readonly kind: "clusterip"; readonly ip: string };

const DOMAIN = /^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;

export function defaultServiceNetworkConfig(): ServiceNetworkConfig {
  return validateServiceNetworkConfig({});
}

/** The service network config from its JSON (absent keys take the defaults); the rejection names the field. */
export function validateServiceNetworkConfig(raw: unknown): ServiceNetworkConfig {
  if (!isRecord(raw))
    throw new InvalidConfigError(
      "service network config",
      raw,
      'must be an object such as {"clusterIPRange":"10.254.0.0/16"}',
    );
  for (const key of Object.keys(raw)) {
    if (!["clusterIPRange", "clusterDomain", "dnsClusterIP"].includes(key))
      throw new InvalidConfigError(
        key,
        raw[key],
        "is not a known field; allowed: clusterIPRange, clusterDomain, dnsClusterIP",
      );
  }
  const rangeText = raw.clusterIPRange ?? DEFAULT_CLUSTER_IP_RANGE;
  const range = typeof rangeText === "string" ? parseCidr(rangeText) : undefined;
  if (range === undefined || !isCanonical(range) || range.prefixLen < 8 || range.prefixLen > 28) {
    throw new InvalidConfigError(
      "clusterIPRange",
      rangeText,
      "must be a network of /8 to /28 such as 10.254.0.0/16 (host bits zero)",
    );
  }
  const domain = raw.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN;
  if (typeof domain !== "string" || domain.length > 200 || !DOMAIN.test(domain)) {
    throw new InvalidConfigError(
      "clusterDomain",
      domain,
      "must be a lowercase DNS domain such as cluster.local (no trailing dot)",
    );
  }
  const dnsText =
    raw.dnsClusterIP ?? (raw.clusterIPRange === undefined ? DEFAULT_DNS_CLUSTER_IP : formatIpv4(range.ip + 10));
  const dns = typeof dnsText === "string" ? parseIpv4(dnsText) : undefined;
  if (dns === undefined || !isAllocatable(range, dns)) {
    throw new InvalidConfigError(
      "dnsClusterIP",
      dnsText,
      `must be an address inside clusterIPRange ${formatCidr(range)}, not its first or last`,
    );
  }
  return { clusterIPRange: range, clusterDomain: domain, dnsClusterIP: dns };
}

export function formatServiceNetworkConfig(config: ServiceNetworkConfig): string {
  return JSON.stringify({
    clusterIPRange: formatCidr(config.clusterIPRange),
    clusterDomain: config.clusterDomain,
    dnsClusterIP: formatIpv4(config.dnsClusterIP),
  });
}

/** Inside the range, and neither its network nor its broadcast address. */
export function isAllocatable(range: Cidr, ip: number): boolean {
  return containsIp(range, ip) && ip !== range.ip && ip !== lastAddress(range);
}
