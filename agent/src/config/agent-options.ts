// The agent's options as one typed object with documented defaults, validated once at start. Raw values come
// from flags or TRELLIS_* environment variables (cli/options.ts); everything here is pure.
import { InvalidArgumentError } from "#lib/errors.js";
import { parseDuration } from "#lib/duration.js";
import { DEFAULT_CNI_SOCKET, DEFAULT_POD_RECORD_DIR, DEFAULT_SUBNET_FILE } from "#lib/names.js";
import type { EtcdConnectionOptions } from "../etcd/client.js";
import { DEFAULT_REGISTRY_PREFIX } from "../services/registry-layout.js";

export const ENV_PREFIX = "TRELLIS_";

export const DEFAULTS = {
  /** flannel also tries :4001 (etcd v2); v3 only here. */
  etcdEndpoints: "http://127.0.0.1:2379",
  etcdPrefix: "/coreos.com/network",
  /** trellis's own keys beside flannel's: Services, their cluster IPs, pods as endpoints (docs/operations.md). */
  registryPrefix: DEFAULT_REGISTRY_PREFIX,
  /** Where flannel's CNI plugin (and ours) read the node's lease. */
  subnetFile: DEFAULT_SUBNET_FILE,
  subnetLeaseTtl: "24h",
  /** How often the masquerade rules are checked (one `nft -j list table`). */
  iptablesResync: "1s",
  /** The periodic full dataplane pass; kernel events repair drift at once anyway. */
  resyncInterval: "10s",
  /** After a store reset, how long peers missing from etcd keep their routes. */
  storeResetGrace: "60s",
  /** Unary etcd request deadline for the daemon. */
  etcdRequestTimeout: "5s",
  /** /healthz, /readyz, /metrics, /status: loopback only unless asked. */
  healthzIp: "127.0.0.1",
  healthzPort: "9808",
  /** The CNI service for the plugin's native shim (docs/decisions/0011); "" turns it off. */
  cniSocket: DEFAULT_CNI_SOCKET,
  /** The CNI plugin's pod records (its podRecordDir): this node's pods, published as Service endpoints. */
  podRecordDir: DEFAULT_POD_RECORD_DIR,
  /** Read when it exists; --config names another. */
  configFile: "/etc/trellis/agent.json",
} as const;

/** The etcd lease TTL bounds: etcd's minimum is a few seconds, and a week is plenty for any outage. */
export const MIN_LEASE_TTL_MS = 2_000;
export const MAX_LEASE_TTL_MS = 7 * 86_400_000;

export interface RawEtcdOptions {
  etcdEndpoints?: string | undefined;
  etcdPrefix?: string | undefined;
  etcdCafile?: string | undefined;
  etcdCertfile?: string | undefined;
  etcdKeyfile?: string | undefined;
  etcdUsername?: string | undefined;
  etcdPassword?: string | undefined;
}

export interface EtcdOptions {
  readonly connection: EtcdConnectionOptions;
  readonly prefix: string;
}

export function parseEndpoints(text: string): string[] {
  const endpoints = text
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "");
  if (endpoints.length === 0)
    throw new InvalidArgumentError(
      "--etcd-endpoints",
      text,
      "must list at least one URL such as http://127.0.0.1:2379",
    );
  for (const endpoint of endpoints) {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw new InvalidArgumentError(
        "--etcd-endpoints",
        endpoint,
        "each endpoint must be a URL such as http://10.0.0.1:2379 or https://etcd:2379",
      );
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new InvalidArgumentError("--etcd-endpoints", endpoint, "must use http:// or https://");
    }
    if (url.port === "")
      throw new InvalidArgumentError("--etcd-endpoints", endpoint, "must include the port, e.g. :2379");
  }
  return endpoints;
}

export function parsePrefix(text: string, field = "--etcd-prefix"): string {
  const prefix = text.replace(/\/+$/, "");
  if (!prefix.startsWith("/") || prefix.length < 2 || /\s/.test(prefix)) {
    throw new InvalidArgumentError(
      field,
      text,
      `must be an absolute key path such as ${field === "--etcd-prefix" ? DEFAULTS.etcdPrefix : DEFAULTS.registryPrefix}`,
    );
  }
  return prefix;
}

export function resolveEtcdOptions(
  raw: RawEtcdOptions,
  mode: { requestTimeoutMs: number; retry: boolean },
): EtcdOptions {
  const endpoints = parseEndpoints(raw.etcdEndpoints ?? DEFAULTS.etcdEndpoints);
  const tlsFiles = raw.etcdCafile !== undefined || raw.etcdCertfile !== undefined || raw.etcdKeyfile !== undefined;
  if (tlsFiles && endpoints.some((e) => e.startsWith("http://"))) {
    throw new InvalidArgumentError(
      "--etcd-endpoints",
      endpoints.join(","),
      "must use https:// when TLS files (--etcd-cafile/--etcd-certfile/--etcd-keyfile) are given",
    );
  }
  if (raw.etcdPassword !== undefined && raw.etcdUsername === undefined) {
    throw new InvalidArgumentError("--etcd-username", undefined, "is required when --etcd-password is given");
  }
  const connection: EtcdConnectionOptions = {
    endpoints,
    requestTimeoutMs: mode.requestTimeoutMs,
    retry: mode.retry,
    ...(raw.etcdCafile === undefined ? {} : { caFile: raw.etcdCafile }),
    ...(raw.etcdCertfile === undefined ? {} : { certFile: raw.etcdCertfile }),
    ...(raw.etcdKeyfile === undefined ? {} : { keyFile: raw.etcdKeyfile }),
    ...(raw.etcdUsername === undefined ? {} : { username: raw.etcdUsername }),
    ...(raw.etcdPassword === undefined ? {} : { password: raw.etcdPassword }),
  };
  return { connection, prefix: parsePrefix(raw.etcdPrefix ?? DEFAULTS.etcdPrefix) };
}

export function parseLeaseTtlSeconds(text: string): number {
  return Math.round(parseDuration("--subnet-lease-ttl", text, MIN_LEASE_TTL_MS, MAX_LEASE_TTL_MS) / 1000);
}
