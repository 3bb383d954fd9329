// Everything `trellis-agent dns` is told, validated into one typed object before anything starts (pure): a bad value
// throws an InvalidArgumentError naming the flag (exit 2); cli/dns-main.ts only reads the result.
import { parseDuration } from "#lib/duration.js";
import { InvalidArgumentError } from "#lib/errors.js";
import { isIpv4 } from "#lib/ipv4.js";
import { DEFAULTS, parsePrefix, resolveEtcdOptions, type EtcdOptions, type RawEtcdOptions } from "./agent-options.js";
import { DAEMON_ETCD_TIMEOUT_MS, type LogFormat, type LogLevel } from "./run-options.js";

/** NodeLocal DNSCache's address: link-local, so it is the same on every node and never routed off it. */
export const DEFAULT_NODE_LOCAL_IP = "169.254.20.10";
export const DNS_DEFAULTS = {
  nodeLocalIp: DEFAULT_NODE_LOCAL_IP,
  port: "53",
  resolvConf: "/etc/resolv.conf",
  ttl: "5s",
  endpointTtl: "10s",
  lameduck: "2s",
  statusPort: "9809",
  configFile: "/etc/trellis/dns.json",
} as const;

export interface RawDnsOptions extends RawEtcdOptions {
  registryPrefix?: string | undefined;
  iface?: string | undefined;
  publicIp?: string | undefined;
  nodeLocalIp: string;
  port: string;
  resolvConf: string;
  ttl: string;
  endpointTtl: string;
  lameduck: string;
  register: boolean;
  statusIp: string;
  statusPort: string;
  logLevel: LogLevel;
  logFormat: LogFormat;
}

export interface DnsOptions {
  readonly etcd: EtcdOptions;
  readonly registryPrefix: string;
  readonly iface: string | undefined;
  readonly publicIp: string | undefined;
  /** Where pods send their queries (added to lo when no interface has it); undefined: none. */
  readonly nodeLocalIp: string | undefined;
  readonly port: number;
  readonly resolvConf: string;
  readonly ttlSeconds: number;
  /** The etcd lease TTL of this server's endpoint of the DNS Service. */
  readonly endpointTtlSeconds: number;
  /** How long it answers on after withdrawing that endpoint at stop, ms. */
  readonly lameduckMs: number;
  /** Publish this server as an endpoint of the DNS Service (kube-system/kube-dns). */
  readonly register: boolean;
  /** /healthz, /readyz, /metrics, /status; undefined: off. */
  readonly status: { readonly ip: string; readonly port: number } | undefined;
  readonly log: { readonly level: LogLevel; readonly format: LogFormat };
}

function port(flag: string, text: string, min: number): number {
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > 65535)
    throw new InvalidArgumentError(
      flag,
      text,
      `must be a port number from ${min}${min === 0 ? " (off)" : ""} to 65535`,
    );
  return Number(text);
}

function seconds(flag: string, text: string, min: number, max: number): number {
  const ms = parseDuration(flag, text);
  if (ms < min * 1000 || ms > max * 1000 || ms % 1000 !== 0)
    throw new InvalidArgumentError(flag, text, `must be whole seconds from ${min}s to ${max}s`);
  return ms / 1000;
}

export function parseDnsOptions(raw: RawDnsOptions): DnsOptions {
  if (raw.nodeLocalIp !== "" && !isIpv4(raw.nodeLocalIp))
    throw new InvalidArgumentError(
      "--node-local-ip",
      raw.nodeLocalIp,
      'must be an IPv4 address such as 169.254.20.10, or "" for none',
    );
  if (!isIpv4(raw.statusIp))
    throw new InvalidArgumentError("--status-ip", raw.statusIp, "must be an IPv4 address such as 127.0.0.1");
  if (!raw.resolvConf.startsWith("/"))
    throw new InvalidArgumentError(
      "--resolv-conf",
      raw.resolvConf,
      "must be an absolute path such as /etc/resolv.conf",
    );
  const statusPort = port("--status-port", raw.statusPort, 0);
  return {
    etcd: resolveEtcdOptions(raw, { requestTimeoutMs: DAEMON_ETCD_TIMEOUT_MS, retry: true }),
    registryPrefix: parsePrefix(raw.registryPrefix ?? DEFAULTS.registryPrefix, "--registry-prefix"),
    iface: raw.iface,
    publicIp: raw.publicIp,
    nodeLocalIp: raw.nodeLocalIp === "" ? undefined : raw.nodeLocalIp,
    port: port("--port", raw.port, 1),
    resolvConf: raw.resolvConf,
    ttlSeconds: seconds("--ttl", raw.ttl, 0, 3600),
    endpointTtlSeconds: seconds("--endpoint-ttl", raw.endpointTtl, 2, 3600),
    // 0 (close at once) to a minute: more gains nothing and nears systemd's stop timeout.
    lameduckMs: parseDuration("--lameduck", raw.lameduck, 0, 60_000),
    register: raw.register,
    status: statusPort === 0 ? undefined : { ip: raw.statusIp, port: statusPort },
    log: { level: raw.logLevel, format: raw.logFormat },
  };
}
