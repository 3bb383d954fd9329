// Writing the service registry (the CLI's `service` and `apply` commands): every change is one etcd transaction, so
// a refused or interrupted command changes nothing. A Service and its cluster IP are created together, conditional
// on both being free: concurrent creates never share an address.
import { randomUUID } from "node:crypto";
import { InvalidArgumentError, TrellisError } from "#lib/errors.js";
import { formatCidr, formatIpv4, sizeOf } from "#lib/ipv4.js";
import type { KvOp, KvStore } from "../kv/kv-store.js";
import {
  defaultServiceNetworkConfig,
  formatServiceNetworkConfig,
  isAllocatable,
  validateServiceNetworkConfig,
  type RegistryLayout,
  type ServiceNetworkConfig,
} from "./registry-layout.js";
import { parseService, serviceObject, type ServiceSpec } from "./service-spec.js";

/** Random picks before a create gives up (each lost one means another Service took that address meanwhile). */
export const MAX_ALLOCATION_ATTEMPTS = 32;

export interface StoredService {
  readonly spec: ServiceSpec;
  readonly clusterIP: number | "None";
  readonly object: Record<string, unknown>;
  readonly modRevision: string;
}

export interface ServiceAdminDeps {
  readonly kv: KvStore;
  readonly layout: RegistryLayout;
  readonly now: () => Date;
  readonly random: () => number;
}

export async function readServiceNetworkConfig(
  deps: Pick<ServiceAdminDeps, "kv" | "layout">,
): Promise<ServiceNetworkConfig> {
  const entry = await deps.kv.get(deps.layout.config);
  if (entry === undefined) return defaultServiceNetworkConfig();
  return validateServiceNetworkConfig(JSON.parse(entry.value) as unknown);
}

export async function writeServiceNetworkConfig(
  deps: Pick<ServiceAdminDeps, "kv" | "layout">,
  raw: Record<string, unknown>,
): Promise<ServiceNetworkConfig> {
  const config = validateServiceNetworkConfig(raw);
  const existing = await deps.kv.list(deps.layout.services);
  if (existing.entries.length > 0) {
    const current = await readServiceNetworkConfig(deps);
    if (formatCidr(current.clusterIPRange) !== formatCidr(config.clusterIPRange)) {
      throw new TrellisError(
        "CONFLICT",
        `clusterIPRange cannot change from ${formatCidr(current.clusterIPRange)} to ${formatCidr(config.clusterIPRange)} while ${existing.entries.length} Service(s) hold addresses in it; delete them first`,
      );
    }
  }
  const entry = await deps.kv.get(deps.layout.config);
  const applied = await deps.kv.commit(
    [
      entry === undefined
        ? { key: deps.layout.config, absent: true }
        : { key: deps.layout.config, modRevision: entry.modRevision },
    ],
    [{ put: deps.layout.config, value: formatServiceNetworkConfig(config) }],
  );
  if (!applied)
    throw new TrellisError(
      "CONFLICT",
      "the service network config changed while writing it; nothing written, try again",
    );
  return config;
}

export function decodeStoredService(value: string, modRevision: string): StoredService {
  const object = JSON.parse(value) as Record<string, unknown>;
  const spec = parseService(object);
  if (spec.clusterIP === undefined)
    throw new TrellisError("INVALID_CONFIG", `stored Service ${spec.namespace}/${spec.name} has no spec.clusterIP`);
  return { spec, clusterIP: spec.clusterIP, object, modRevision };
}

export async function getService(
  deps: Pick<ServiceAdminDeps, "kv" | "layout">,
  namespace: string,
  name: string,
): Promise<StoredService | undefined> {
  const entry = await deps.kv.get(deps.layout.service(namespace, name));
  return entry === undefined ? undefined : decodeStoredService(entry.value, entry.modRevision);
}

function randomCandidate(config: ServiceNetworkConfig, random: () => number): number {
  const { clusterIPRange: range } = config;
  for (;;) {
    const ip = range.ip + 1 + Math.floor(random() * (sizeOf(range.prefixLen) - 2));
    if (ip !== config.dnsClusterIP) return ip >>> 0;
  }
}

function checkRequested(config: ServiceNetworkConfig, ip: number): void {
  if (!isAllocatable(config.clusterIPRange, ip)) {
    throw new InvalidArgumentError(
      "spec.clusterIP",
      formatIpv4(ip),
      `must be inside the cluster IP range ${formatCidr(config.clusterIPRange)}, not its network or broadcast address`,
    );
  }
}

async function holderOf(deps: Pick<ServiceAdminDeps, "kv" | "layout">, ip: number): Promise<string> {
  return (await deps.kv.get(deps.layout.clusterIp(ip)))?.value ?? "another Service";
}

/**
 * Creates a Service: its object and its cluster IP key in one transaction, both conditional on being absent. A
 * requested address outside the range or taken is refused naming both; an allocated one is picked at random and
 * picked again when another create took it first.
 */
export async function createService(
  deps: ServiceAdminDeps,
  spec: ServiceSpec,
  config: ServiceNetworkConfig,
  endpoints?: Record<string, unknown>,
): Promise<StoredService> {
  const key = deps.layout.service(spec.namespace, spec.name);
  if (typeof spec.clusterIP === "number") checkRequested(config, spec.clusterIP);
  const meta = { uid: randomUUID(), creationTimestamp: deps.now().toISOString() };
  for (let attempt = 0; attempt < MAX_ALLOCATION_ATTEMPTS; attempt += 1) {
    const clusterIP = spec.clusterIP ?? randomCandidate(config, deps.random);
    const object = serviceObject(spec, clusterIP, meta);
    const value = JSON.stringify(object);
    const ops: KvOp[] = [{ put: key, value }];
    // Explicit endpoints go in the same transaction: a Service never exists without the ones it was given.
    if (endpoints !== undefined)
      ops.push({ put: deps.layout.endpoints(spec.namespace, spec.name), value: JSON.stringify(endpoints) });
    const compares = [{ key, absent: true as const }];
    if (clusterIP !== "None") {
      ops.push({ put: deps.layout.clusterIp(clusterIP), value: `${spec.namespace}/${spec.name}` });
      compares.push({ key: deps.layout.clusterIp(clusterIP), absent: true });
    }
    if (await deps.kv.commit(compares, ops)) {
      const created = await deps.kv.get(key);
      return { spec: { ...spec, clusterIP }, clusterIP, object, modRevision: created?.modRevision ?? "0" };
    }
    if ((await deps.kv.get(key)) !== undefined)
      throw new TrellisError(
        "CONFLICT",
        `Service ${spec.namespace}/${spec.name} already exists; nothing written (apply -f updates it)`,
      );
    if (clusterIP !== "None" && spec.clusterIP !== undefined) {
      throw new TrellisError(
        "CONFLICT",
        `spec.clusterIP ${formatIpv4(clusterIP)} is taken by ${await holderOf(deps, clusterIP)} (range ${formatCidr(config.clusterIPRange)}); nothing written`,
      );
    }
  }
  throw new TrellisError(
    "CONFLICT",
    `no free cluster IP found in ${formatCidr(config.clusterIPRange)} after ${MAX_ALLOCATION_ATTEMPTS} tries; the range may be full`,
  );
}

/** apply: creates the Service, or updates its spec keeping its cluster IP, uid and creation time. */
export async function applyService(
  deps: ServiceAdminDeps,
  spec: ServiceSpec,
  config: ServiceNetworkConfig,
): Promise<{ outcome: "created" | "configured" | "unchanged"; service: StoredService }> {
  const existing = await getService(deps, spec.namespace, spec.name);
  if (existing === undefined) return { outcome: "created", service: await createService(deps, spec, config) };
  if (spec.clusterIP !== undefined && spec.clusterIP !== existing.clusterIP) {
    const wanted = spec.clusterIP === "None" ? "None" : formatIpv4(spec.clusterIP);
    const held = existing.clusterIP === "None" ? "None" : formatIpv4(existing.clusterIP);
    throw new InvalidArgumentError(
      "spec.clusterIP",
      wanted,
      `cannot replace ${held} of ${spec.namespace}/${spec.name}: a Service's cluster IP is immutable (delete and create it again)`,
    );
  }
  const metadata = existing.object.metadata as { uid?: string; creationTimestamp?: string };
  const object = serviceObject({ ...spec, clusterIP: existing.clusterIP }, existing.clusterIP, {
    uid: metadata.uid ?? randomUUID(),
    creationTimestamp: metadata.creationTimestamp ?? deps.now().toISOString(),
  });
  const value = JSON.stringify(object);
  if (value === JSON.stringify(existing.object)) return { outcome: "unchanged", service: existing };
  const key = deps.layout.service(spec.namespace, spec.name);
  if (!(await deps.kv.commit([{ key, modRevision: existing.modRevision }], [{ put: key, value }]))) {
    throw new TrellisError(
      "CONFLICT",
      `Service ${spec.namespace}/${spec.name} changed while applying; nothing written, try again`,
    );
  }
  return {
    outcome: "configured",
    service: {
      spec: { ...spec, clusterIP: existing.clusterIP },
      clusterIP: existing.clusterIP,
      object,
      modRevision: (await deps.kv.get(key))?.modRevision ?? "0",
    },
  };
}

/** Deletes the Service, its cluster IP and its explicit endpoints in one transaction. */
export async function deleteService(
  deps: Pick<ServiceAdminDeps, "kv" | "layout">,
  namespace: string,
  name: string,
): Promise<StoredService> {
  const existing = await getService(deps, namespace, name);
  if (existing === undefined) throw new TrellisError("NOT_FOUND", `there is no Service ${namespace}/${name}`);
  const key = deps.layout.service(namespace, name);
  const ops: KvOp[] = [{ delete: key }, { delete: deps.layout.endpoints(namespace, name) }];
  if (existing.clusterIP !== "None") ops.push({ delete: deps.layout.clusterIp(existing.clusterIP) });
  if (!(await deps.kv.commit([{ key, modRevision: existing.modRevision }], ops))) {
    throw new TrellisError(
      "CONFLICT",
      `Service ${namespace}/${name} changed while deleting; nothing deleted, try again`,
    );
  }
  return existing;
}

export async function listServices(
  deps: Pick<ServiceAdminDeps, "kv" | "layout">,
): Promise<{ services: StoredService[]; invalid: { key: string; reason: string }[] }> {
  const listing = await deps.kv.list(deps.layout.services);
  const services: StoredService[] = [];
  const invalid: { key: string; reason: string }[] = [];
  for (const entry of listing.entries) {
    try {
      services.push(decodeStoredService(entry.value, entry.modRevision));
    } catch (error) {
      invalid.push({ key: entry.key, reason: error instanceof Error ? error.message : String(error) });
    }
  }
  return { services, invalid };
}
