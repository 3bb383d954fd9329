// The kernel rules of one Service, after kube-proxy's nftables shape (../shared/reference/services.md, A) with the
// per-Service chains folded into maps: an element of the service-ips map per port → `goto pick-N` (one shared chain
// per endpoint count N) → `numgen random mod N` indexes the endpoints map (cluster IP . proto . port . i → pod IP .
// port) → DNAT (pure). Elements instead of rules: 10,000 Services load in 0.55 s instead of 1.3 s, and one change
// costs nft ~15 ms instead of ~65 ms (docs/decisions/0014). A port without backends is an element of
// no-endpoint-services instead, which rejects at once. Masquerade only where needed: a pod reaching itself (hairpin:
// one set of endpoint pairs, checked after DNAT) and sources outside the pod network; pods keep their source IPs.
// ClientIP affinity, and a port with more than MAX_PICK endpoints, keep a chain of their own: the port chain checks a
// dynamic set per endpoint first (affinity), then picks evenly.
import { formatCidr, formatIpv4, type Cidr } from "#lib/ipv4.js";
import type { Backend, ResolvedService } from "../services/catalog.js";
import type { ServicePort } from "../services/service-spec.js";

export const TABLE = "trellis-services";
export const SERVICE_MAP = "service-ips";
export const NO_ENDPOINT_MAP = "no-endpoint-services";
export const PROTOCOLS = ["tcp", "udp", "sctp"] as const;
export type Protocol = (typeof PROTOCOLS)[number];
/**
 * Per protocol, `cluster IP . port . i` → `pod IP . port`: endpoint i of a port that picks through a shared chain.
 * One map per protocol, not one keyed by `meta l4proto . th dport`: nft 1.0.6 cannot read such a DNAT map rule back
 * ("conflicting protocols specified"), so every later transaction that needs the rule cache would fail.
 */
export const endpointMapName = (protocol: Protocol): string => `endpoints-${protocol}`;
/** Ports with up to this many endpoints (and no affinity) pick through the shared `pick-<proto>-N` chains. */
export const MAX_PICK = 16;
export const REJECT_CHAIN = "reject-chain";
export const MARK_CHAIN = "mark-for-masquerade";
/** `endpoint . endpoint` for every endpoint address: after DNAT, a packet from an endpoint to itself is hairpin. */
export const HAIRPIN_SET = "hairpin-endpoints";
/** The mark kube-proxy uses, so that the agent's masquerade table (and flannel's rules) leave these packets to us. */
export const MASQUERADE_MARK = 0x4000;

export interface ChainDef {
  readonly name: string;
  readonly rules: readonly string[];
}

export interface SetDef {
  readonly name: string;
  readonly timeoutSeconds: number;
}

export interface ElementDef {
  /** SERVICE_MAP, NO_ENDPOINT_MAP or an endpointMapName */
  readonly map: string;
  /** "10.254.0.17 . tcp . 8000" ("10.254.0.17 . 8000 . i" in an endpoints map) */
  readonly key: string;
  /** "goto <chain>", or "172.30.1.2 . 8080" in the endpoints map */
  readonly value: string;
}

export interface ServiceProgram {
  readonly chains: readonly ChainDef[];
  readonly sets: readonly SetDef[];
  readonly elements: readonly ElementDef[];
  readonly endpoints: number;
  /** UDP backends by element key, for deleting conntrack entries to backends that went away. */
  readonly udpBackends: ReadonlyMap<string, readonly Backend[]>;
  /** Its endpoints' addresses: a connection from one of them to itself through the Service is masqueraded. */
  readonly hairpin: readonly number[];
}

const proto = (port: ServicePort): Protocol => port.protocol.toLowerCase() as Protocol;

/** Names carry the Service's identity with "/" (which Kubernetes names never contain), so they cannot collide. */
export function portChainName(service: ResolvedService, port: ServicePort): string {
  return `svc/${service.spec.namespace}/${service.spec.name}/${proto(port)}/${port.port}`;
}

export function endpointChainName(service: ResolvedService, port: ServicePort, backend: Backend): string {
  return `ep/${service.spec.namespace}/${service.spec.name}/${proto(port)}/${port.port}/${formatIpv4(backend.ip)}/${backend.port}`;
}

export const pickChainName = (protocol: Protocol, endpoints: number): string => `pick-${protocol}-${endpoints}`;

const affinitySetName = (endpointChain: string): string => `aff/${endpointChain.slice("ep/".length)}`;

export function serviceProgram(service: ResolvedService): ServiceProgram {
  const { spec } = service;
  const chains: ChainDef[] = [];
  const sets: SetDef[] = [];
  const elements: ElementDef[] = [];
  const udpBackends = new Map<string, readonly Backend[]>();
  const hairpin = new Set<number>();
  let endpoints = 0;
  const program = (): ServiceProgram => ({ chains, sets, elements, endpoints, udpBackends, hairpin: [...hairpin] });
  if (spec.clusterIP === "None") return program(); // headless: DNS only
  const clusterIP = formatIpv4(spec.clusterIP);
  const affinity = spec.sessionAffinity === "ClientIP";
  for (const [n, port] of spec.ports.entries()) {
    const key = `${clusterIP} . ${proto(port)} . ${port.port}`;
    const backends = service.backends[n] ?? [];
    if (port.protocol === "UDP") udpBackends.set(key, backends);
    if (backends.length === 0) {
      elements.push({ map: NO_ENDPOINT_MAP, key, value: `goto ${REJECT_CHAIN}` });
      continue;
    }
    endpoints += backends.length;
    for (const backend of backends) hairpin.add(backend.ip);
    if (!affinity && backends.length <= MAX_PICK) {
      const map = endpointMapName(proto(port));
      for (const [i, backend] of backends.entries())
        elements.push({
          map,
          key: `${clusterIP} . ${port.port} . ${i}`,
          value: `${formatIpv4(backend.ip)} . ${backend.port}`,
        });
      elements.push({ map: SERVICE_MAP, key, value: `goto ${pickChainName(proto(port), backends.length)}` });
      continue;
    }
    const dnat = (backend: Backend): string =>
      `meta l4proto ${proto(port)} dnat to ${formatIpv4(backend.ip)}:${backend.port}`;
    const portChain = portChainName(service, port);
    const rules: string[] = [];
    if (affinity) {
      // A chain per endpoint: it records the client in the endpoint's set, which the port chain checks first.
      const endpointChains = backends.map((backend) => {
        const name = endpointChainName(service, port, backend);
        const set = affinitySetName(name);
        sets.push({ name: set, timeoutSeconds: spec.affinityTimeoutSeconds });
        chains.push({ name, rules: [`update @${set} { ip saddr }`, dnat(backend)] });
        rules.push(`ip saddr @${set} goto ${name}`);
        return `goto ${name}`;
      });
      rules.push(...evenPick(endpointChains));
    } else {
      rules.push(...evenPick(backends.map(dnat)));
    }
    chains.push({ name: portChain, rules });
    elements.push({ map: SERVICE_MAP, key, value: `goto ${portChain}` });
  }
  return program();
}

/**
 * An even random pick among the endpoints' statements, as iptables' `statistic` chain does it: endpoint i of n is
 * taken with probability 1/(n−i) once the ones before it were passed, the last one always. Not kube-proxy's
 * `numgen random mod n vmap { … }` to a chain per endpoint: each such vmap is an anonymous set, and Linux 6.1 finds a
 * set added in the same transaction by walking the whole transaction, so 10,000 Services in one full sync took 100 s
 * in the kernel; nor a chain per endpoint, whose cost is per rule (docs/decisions/0014). Only a connection's first
 * packet walks these rules.
 */
function evenPick(statements: readonly string[]): string[] {
  return statements.map((statement, i) => {
    const left = statements.length - i;
    return left === 1 ? statement : `numgen random mod ${left} == 0 ${statement}`;
  });
}

/** The shared chains: per protocol, one for each endpoint count up to MAX_PICK. */
export function pickChains(): { protocol: Protocol; endpoints: number; name: string }[] {
  return PROTOCOLS.flatMap((protocol) =>
    Array.from({ length: MAX_PICK }, (_, i) => ({ protocol, endpoints: i + 1, name: pickChainName(protocol, i + 1) })),
  );
}

/** The table's fixed part: maps, hooks and helper chains, declared idempotently and refilled (one transaction). */
export function baseScript(podNetwork: Cidr): string[] {
  const t = `ip ${TABLE}`;
  const hook = (name: string, type: "nat" | "filter", point: string, priority: number): string =>
    `add chain ${t} ${name} { type ${type} hook ${point} priority ${priority} ; policy accept ; }`;
  const chain = (name: string, ...rules: string[]): string[] => [
    `add chain ${t} ${name}`,
    `flush chain ${t} ${name}`,
    ...rules.map((r) => `add rule ${t} ${name} ${r}`),
  ];
  const mark = `0x${MASQUERADE_MARK.toString(16)}`;
  return [
    `add table ${t}`,
    `add map ${t} ${SERVICE_MAP} { type ipv4_addr . inet_proto . inet_service : verdict ; }`,
    `add map ${t} ${NO_ENDPOINT_MAP} { type ipv4_addr . inet_proto . inet_service : verdict ; }`,
    // `typeof`: a concatenation cannot hold numgen's variable-sized `integer` type, but can hold numgen itself.
    ...PROTOCOLS.map(
      (p) =>
        `add map ${t} ${endpointMapName(p)} { typeof ip daddr . ${p} dport . numgen random mod 1 : ip daddr . ${p} dport ; }`,
    ),
    `add set ${t} ${HAIRPIN_SET} { type ipv4_addr . ipv4_addr ; }`,
    // Numeric priorities: Debian 12's nft 1.0.6 rejects the named dstnat outside prerouting.
    hook("nat-prerouting", "nat", "prerouting", -100),
    hook("nat-output", "nat", "output", -100),
    hook("nat-postrouting", "nat", "postrouting", 100),
    // Before DNAT could find nothing to do: a Service without endpoints is refused at once, never a timeout.
    hook("filter-forward", "filter", "forward", -110),
    hook("filter-output", "filter", "output", -110),
    hook("filter-input", "filter", "input", -110),
    ...pickChains().flatMap(({ protocol, endpoints, name }) =>
      chain(
        name,
        `meta l4proto ${protocol} dnat ip to ip daddr . ${protocol} dport . numgen random mod ${endpoints} map @${endpointMapName(protocol)}`,
      ),
    ),
    ...chain(REJECT_CHAIN, "meta l4proto tcp reject with tcp reset", "reject"),
    ...chain(MARK_CHAIN, `meta mark set meta mark or ${mark}`),
    ...chain(
      "masquerading",
      `ct status dnat ip saddr . ip daddr @${HAIRPIN_SET} masquerade fully-random`,
      `meta mark & ${mark} == 0 return`,
      `meta mark set meta mark xor ${mark}`,
      "masquerade fully-random",
    ),
    // kube-proxy marks sources outside the pod network in each Service chain; one lookup in the same map does it for
    // all, a rule fewer per Service port (docs/decisions/0014).
    ...chain(
      "services",
      `ip saddr != ${formatCidr(podNetwork)} ip daddr . meta l4proto . th dport @${SERVICE_MAP} jump ${MARK_CHAIN}`,
      `ip daddr . meta l4proto . th dport vmap @${SERVICE_MAP}`,
    ),
    ...chain("endpoint-check", `ip daddr . meta l4proto . th dport vmap @${NO_ENDPOINT_MAP}`),
    ...chain("nat-prerouting", "jump services"),
    ...chain("nat-output", "jump services"),
    ...chain("nat-postrouting", "jump masquerading"),
    ...chain("filter-forward", "ct state new jump endpoint-check"),
    ...chain("filter-output", "ct state new jump endpoint-check"),
    ...chain("filter-input", "ct state new jump endpoint-check"),
  ];
}
