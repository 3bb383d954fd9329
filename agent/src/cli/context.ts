// Wiring the real adapters for a command: etcd registry, host network, files. Entry-point code only.
// The etcd client (gRPC, protobuf: ~170 ms) is imported only by commands that talk to etcd, so `--help` and
// argument errors stay fast.
import { DEFAULTS, parsePrefix, resolveEtcdOptions, type EtcdOptions } from "../config/agent-options.js";
import { DAEMON_ETCD_TIMEOUT_MS } from "../config/run-options.js";
import type { KvStore } from "../kv/kv-store.js";
import { RegistryLayout } from "../services/registry-layout.js";
import type { SubnetRegistry } from "../lease/registry.js";
import type { EtcdFlags } from "./options.js";

/** One-shot commands fail fast (3 s, no retries); the daemon waits longer and retries (config/run-options.ts). */
const CLI_ETCD_TIMEOUT_MS = 3000;

export interface RegistryHandle {
  readonly registry: SubnetRegistry;
  readonly prefix: string;
}

export async function openRegistry(flags: EtcdFlags, mode: "cli" | "daemon" = "cli"): Promise<RegistryHandle> {
  const etcd = resolveEtcdOptions(flags, {
    requestTimeoutMs: mode === "cli" ? CLI_ETCD_TIMEOUT_MS : DAEMON_ETCD_TIMEOUT_MS,
    retry: mode === "daemon",
  });
  return await connectRegistry(etcd);
}

/** The subnet registry over options already validated (the daemon's: config/run-options.ts). */
export async function connectRegistry(etcd: EtcdOptions): Promise<RegistryHandle> {
  const [{ createEtcdClient }, { EtcdRegistry }] = await Promise.all([
    import("../etcd/client.js"),
    import("../lease/etcd-registry.js"),
  ]);
  const client = await createEtcdClient(etcd.connection);
  return {
    registry: new EtcdRegistry(client, etcd.prefix, etcd.connection.endpoints, etcd.connection.requestTimeoutMs),
    prefix: etcd.prefix,
  };
}

export interface ServiceRegistryHandle extends RegistryHandle {
  readonly kv: KvStore;
  readonly layout: RegistryLayout;
}

/** The service registry (a KV store over the same etcd client) beside the subnet registry. */
export async function openServiceRegistry(
  flags: EtcdFlags,
  mode: "cli" | "daemon" = "cli",
): Promise<ServiceRegistryHandle> {
  const etcd = resolveEtcdOptions(flags, {
    requestTimeoutMs: mode === "cli" ? CLI_ETCD_TIMEOUT_MS : DAEMON_ETCD_TIMEOUT_MS,
    retry: mode === "daemon",
  });
  return await connectServiceRegistry(
    etcd,
    parsePrefix(flags.registryPrefix ?? DEFAULTS.registryPrefix, "--registry-prefix"),
  );
}

/** The service registry over options already validated (the daemon's: config/run-options.ts). */
export async function connectServiceRegistry(
  etcd: EtcdOptions,
  registryPrefix: string,
): Promise<ServiceRegistryHandle> {
  const layout = new RegistryLayout(registryPrefix);
  const [{ createEtcdClient }, { EtcdRegistry }, { EtcdKvStore }] = await Promise.all([
    import("../etcd/client.js"),
    import("../lease/etcd-registry.js"),
    import("../kv/etcd-kv-store.js"),
  ]);
  const client = await createEtcdClient(etcd.connection);
  const registry = new EtcdRegistry(client, etcd.prefix, etcd.connection.endpoints, etcd.connection.requestTimeoutMs);
  return { registry, prefix: etcd.prefix, kv: new EtcdKvStore(client, etcd.connection.endpoints), layout };
}

export async function withServiceRegistry<T>(
  flags: EtcdFlags,
  fn: (handle: ServiceRegistryHandle) => Promise<T>,
): Promise<T> {
  const handle = await openServiceRegistry(flags);
  try {
    return await fn(handle);
  } finally {
    handle.registry.close();
  }
}

/** Runs fn with a registry and always closes it, so the process can exit. */
export async function withRegistry<T>(flags: EtcdFlags, fn: (handle: RegistryHandle) => Promise<T>): Promise<T> {
  const handle = await openRegistry(flags);
  try {
    return await fn(handle);
  } finally {
    handle.registry.close();
  }
}
