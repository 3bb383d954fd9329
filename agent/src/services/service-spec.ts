// A Service as Kubernetes' v1 API spells it, validated into a typed spec (pure). The registry stores the object in
// the same shape, so `service show` prints what `apply -f` took. Every rejection names the field, the value and what
// is allowed; fields trellis cannot honour (NodePort, named target ports, SCTP) are refused, never ignored.
import { InvalidArgumentError } from "#lib/errors.js";
import { formatIpv4, parseIpv4 } from "#lib/ipv4.js";
import { checkLabels } from "#lib/labels.js";
import { isRecord } from "#lib/records.js";

export const PROTOCOLS = ["TCP", "UDP"] as const;
export type Protocol = (typeof PROTOCOLS)[number];
export const AFFINITIES = ["None", "ClientIP"] as const;
export type SessionAffinity = (typeof AFFINITIES)[number];
/** Kubernetes' default for sessionAffinityConfig.clientIP.timeoutSeconds. */
export const DEFAULT_AFFINITY_TIMEOUT_S = 10_800;
export const MAX_AFFINITY_TIMEOUT_S = 86_400;
export const DEFAULT_NAMESPACE = "default";

export interface ServicePort {
  /** Required (a DNS label) when a Service has more than one port; names SRV records. */
  readonly name?: string;
  readonly port: number;
  /** The pods' port; defaults to `port`. */
  readonly targetPort: number;
  readonly protocol: Protocol;
}

export interface ServiceSpec {
  readonly namespace: string;
  readonly name: string;
  /** An address to use, "None" for a headless Service, or undefined: allocate one. */
  readonly clusterIP: number | "None" | undefined;
  readonly ports: readonly ServicePort[];
  /** undefined: a selectorless Service, whose endpoints are given explicitly. */
  readonly selector: Readonly<Record<string, string>> | undefined;
  readonly sessionAffinity: SessionAffinity;
  readonly affinityTimeoutSeconds: number;
}

/** DNS-1035 label: what Kubernetes requires of Service names. */
const DNS_1035 = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** DNS-1123 label: namespaces and port names. */
const DNS_1123 = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const bad = (field: string, value: unknown, allowed: string): InvalidArgumentError =>
  new InvalidArgumentError(field, value, allowed);

export function checkServiceName(name: unknown, field = "metadata.name"): string {
  if (typeof name !== "string" || !DNS_1035.test(name))
    throw bad(
      field,
      name,
      "must be a DNS-1035 label: lowercase letters, digits and '-', starting with a letter, at most 63 characters",
    );
  return name;
}

export function checkNamespace(namespace: unknown, field = "metadata.namespace"): string {
  if (typeof namespace !== "string" || !DNS_1123.test(namespace))
    throw bad(field, namespace, "must be a DNS-1123 label: lowercase letters, digits and '-', at most 63 characters");
  return namespace;
}

function integer(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max)
    throw bad(field, value, `must be an integer from ${min} to ${max}`);
  return value;
}

function parsePort(raw: unknown, n: number, count: number): ServicePort {
  const field = `spec.ports[${n}]`;
  if (!isRecord(raw)) throw bad(field, raw, "must be an object {name, port, targetPort, protocol}");
  const port = integer(raw.port, `${field}.port`, 1, 65535);
  const protocol = raw.protocol ?? "TCP";
  if (typeof protocol !== "string" || !(PROTOCOLS as readonly string[]).includes(protocol))
    throw bad(`${field}.protocol`, protocol, `must be one of ${PROTOCOLS.join(", ")}`);
  let targetPort = port;
  if (raw.targetPort !== undefined) {
    if (typeof raw.targetPort === "string" && !/^\d+$/.test(raw.targetPort)) {
      throw bad(`${field}.targetPort`, raw.targetPort, "must be a port number: pods here declare no named ports");
    }
    targetPort = integer(
      typeof raw.targetPort === "string" ? Number(raw.targetPort) : raw.targetPort,
      `${field}.targetPort`,
      1,
      65535,
    );
  }
  if (raw.nodePort !== undefined)
    throw bad(`${field}.nodePort`, raw.nodePort, "is not supported: only ClusterIP Services");
  if (raw.name === undefined || raw.name === "") {
    if (count > 1)
      throw bad(`${field}.name`, raw.name, "is required when a Service has more than one port (a DNS-1123 label)");
    return { port, targetPort, protocol: protocol as Protocol };
  }
  if (typeof raw.name !== "string" || !DNS_1123.test(raw.name))
    throw bad(
      `${field}.name`,
      raw.name,
      "must be a DNS-1123 label: lowercase letters, digits and '-', at most 63 characters",
    );
  return { name: raw.name, port, targetPort, protocol: protocol as Protocol };
}

function parsePorts(raw: unknown, headless: boolean): ServicePort[] {
  if (raw === undefined && headless) return [];
  if (!Array.isArray(raw) || (raw.length === 0 && !headless))
    throw bad("spec.ports", raw, "must list at least one port (only a headless Service may have none)");
  const ports = raw.map((p, n) => parsePort(p, n, raw.length));
  const seen = new Set<string>();
  const names = new Set<string>();
  for (const [n, p] of ports.entries()) {
    const key = `${p.port}/${p.protocol}`;
    if (seen.has(key)) throw bad(`spec.ports[${n}]`, key, "duplicates another port with the same port and protocol");
    seen.add(key);
    if (p.name !== undefined) {
      if (names.has(p.name)) throw bad(`spec.ports[${n}].name`, p.name, "duplicates another port's name");
      names.add(p.name);
    }
  }
  return ports;
}

function parseClusterIp(raw: unknown): number | "None" | undefined {
  if (raw === undefined || raw === null || raw === "") return undefined;
  if (raw === "None") return "None";
  const ip = typeof raw === "string" ? parseIpv4(raw) : undefined;
  if (ip === undefined)
    throw bad(
      "spec.clusterIP",
      raw,
      'must be an IPv4 address inside the cluster IP range, "None" (headless) or absent (allocated)',
    );
  return ip;
}

/** Validates a v1 Service object (from a manifest, the CLI, or the registry). */
export function parseService(raw: unknown): ServiceSpec {
  if (!isRecord(raw)) throw bad("Service", raw, "must be an object (apiVersion v1, kind Service)");
  if (raw.apiVersion !== undefined && raw.apiVersion !== "v1")
    throw bad("apiVersion", raw.apiVersion, 'must be "v1" for a Service');
  if (raw.kind !== undefined && raw.kind !== "Service") throw bad("kind", raw.kind, 'must be "Service"');
  const metadata = raw.metadata;
  if (!isRecord(metadata)) throw bad("metadata", metadata, "must be an object with at least name");
  const name = checkServiceName(metadata.name);
  const namespace = metadata.namespace === undefined ? DEFAULT_NAMESPACE : checkNamespace(metadata.namespace);
  const spec = raw.spec ?? {};
  if (!isRecord(spec)) throw bad("spec", spec, "must be an object");
  const type = spec.type ?? "ClusterIP";
  if (type !== "ClusterIP")
    throw bad("spec.type", type, 'must be "ClusterIP" (NodePort, LoadBalancer and ExternalName are not supported)');
  const clusterIP = parseClusterIp(spec.clusterIP);
  const ports = parsePorts(spec.ports, clusterIP === "None");
  // An empty selector is no selector, as in Kubernetes: the Service's endpoints are given explicitly.
  const labels =
    spec.selector === undefined || spec.selector === null ? undefined : checkLabels(spec.selector, "spec.selector");
  const selector = labels === undefined || Object.keys(labels).length === 0 ? undefined : labels;
  const sessionAffinity = spec.sessionAffinity ?? "None";
  if (typeof sessionAffinity !== "string" || !(AFFINITIES as readonly string[]).includes(sessionAffinity)) {
    throw bad("spec.sessionAffinity", sessionAffinity, `must be one of ${AFFINITIES.join(", ")}`);
  }
  const config = spec.sessionAffinityConfig;
  let affinityTimeoutSeconds = DEFAULT_AFFINITY_TIMEOUT_S;
  if (config !== undefined) {
    const clientIP = isRecord(config) ? config.clientIP : undefined;
    const timeout = isRecord(clientIP) ? clientIP.timeoutSeconds : undefined;
    if (!isRecord(config) || !isRecord(clientIP))
      throw bad("spec.sessionAffinityConfig", config, 'must be {"clientIP":{"timeoutSeconds":N}}');
    if (timeout !== undefined)
      affinityTimeoutSeconds = integer(
        timeout,
        "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
        1,
        MAX_AFFINITY_TIMEOUT_S,
      );
  }
  return {
    namespace,
    name,
    clusterIP,
    ports,
    selector,
    sessionAffinity: sessionAffinity as SessionAffinity,
    affinityTimeoutSeconds,
  };
}

/** The v1 object to store or print: the spec with the allocated cluster IP and the registry's metadata. */
export function serviceObject(
  spec: ServiceSpec,
  clusterIP: number | "None",
  meta: { uid: string; creationTimestamp: string },
): Record<string, unknown> {
  const ports = spec.ports.map((p) => ({
    ...(p.name === undefined ? {} : { name: p.name }),
    port: p.port,
    targetPort: p.targetPort,
    protocol: p.protocol,
  }));
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: spec.name, namespace: spec.namespace, uid: meta.uid, creationTimestamp: meta.creationTimestamp },
    spec: {
      type: "ClusterIP",
      clusterIP: clusterIP === "None" ? "None" : formatIpv4(clusterIP),
      ports,
      ...(spec.selector === undefined ? {} : { selector: spec.selector }),
      sessionAffinity: spec.sessionAffinity,
      ...(spec.sessionAffinity === "ClientIP"
        ? { sessionAffinityConfig: { clientIP: { timeoutSeconds: spec.affinityTimeoutSeconds } } }
        : {}),
    },
  };
}
