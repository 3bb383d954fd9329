// Wiring the real adapters for a command: etcd registry, host network, files. Entry-point code only.
// The etcd client (gRPC, protobuf: ~170 ms) is imported only by commands that talk to etcd, so `--help` and
// argument errors stay fast.
import { resolveEtcdOptions } from "../config/agent-options.js";
import type { SubnetRegistry } from "../lease/registry.js";
import type { EtcdFlags } from "./options.js";

/** One-shot commands fail fast (3 s, no retries); the daemon waits longer and retries. */
export const CLI_ETCD_TIMEOUT_MS = 3000;
export const DAEMON_ETCD_TIMEOUT_MS = 5000;

export interface RegistryHandle {
  readonly registry: SubnetRegistry;
  readonly prefix: string;
}

export async function openRegistry(flags: EtcdFlags, mode: "cli" | "daemon" = "cli"): Promise<RegistryHandle> {
  const etcd = resolveEtcdOptions(flags, {
    requestTimeoutMs: mode === "cli" ? CLI_ETCD_TIMEOUT_MS : DAEMON_ETCD_TIMEOUT_MS,
    retry: mode === "daemon",
  });
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

/** Runs fn with a registry and always closes it, so the process can exit. */
export async function withRegistry<T>(flags: EtcdFlags, fn: (handle: RegistryHandle) => Promise<T>): Promise<T> {
  const handle = await openRegistry(flags);
  try {
    return await fn(handle);
  } finally {
    handle.registry.close();
  }
}
