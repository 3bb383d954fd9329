// Everything `trellis-agent run` is told — flags, TRELLIS_* variables and config-file values, already merged by the
// CLI (cli/options.ts, cli/config-file.ts) into raw strings — validated into one typed object before anything
// starts. Pure: a bad value throws an InvalidArgumentError naming the flag (exit 2), and the daemon's wiring
// (cli/daemon-main.ts) only reads the result.
import { parseDuration } from "#lib/duration.js";
import { InvalidArgumentError } from "#lib/errors.js";
import { isIpv4 } from "#lib/ipv4.js";
import { isRoutableUnicast6 } from "#lib/ipv6.js";
import { CNI_SOCKET_PATH_RULE, isCniSocketPath, isPlainInterfaceName, PLAIN_INTERFACE_NAME_RULE } from "#lib/names.js";
import {
  DEFAULTS,
  parseLeaseTtlSeconds,
  parsePrefix,
  resolveEtcdOptions,
  type EtcdOptions,
  type RawEtcdOptions,
} from "./agent-options.js";
import { PUBLIC_IPV6_RULE } from "../node/public-ip.js";

/** The daemon's unary etcd deadline; it retries (one-shot commands fail fast instead: cli/context.ts). */
export const DAEMON_ETCD_TIMEOUT_MS = 5000;

export const FIREWALL_CHOICES = ["auto", "nftables", "iptables"] as const;
export type FirewallChoice = (typeof FIREWALL_CHOICES)[number];
export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ["json", "text"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** What the CLI hands over: every value as commander produced it (strings, booleans, the choices it checked). */
export interface RawRunOptions extends RawEtcdOptions {
  registryPrefix?: string | undefined;
  iface?: string | undefined;
  publicIp?: string | undefined;
  publicIpv6?: string | undefined;
  subnetFile: string;
  healthzIp: string;
  healthzPort: string;
  subnetLeaseTtl: string;
  ipMasq: boolean;
  iptablesResync: string;
  resyncInterval: string;
  vxlanDevice?: string | undefined;
  storeResetGrace: string;
  cniSocket: string;
  services: boolean;
  podRecordDir: string;
  firewallBackend: FirewallChoice;
  logLevel: LogLevel;
  logFormat: LogFormat;
}

export interface RunOptions {
  readonly etcd: EtcdOptions;
  /** The service registry's etcd prefix. */
  readonly registryPrefix: string;
  readonly iface: string | undefined;
  readonly publicIp: string | undefined;
  /** --public-ipv6: used only on an IPv6 pod network (else the --iface's first global IPv6 address, if any). */
  readonly publicIpv6: string | undefined;
  readonly subnetFile: string;
  readonly leaseTtlSeconds: number;
  readonly ipMasq: boolean;
  readonly firewallBackend: FirewallChoice;
  /** How often the masquerade rules are checked. */
  readonly masqResyncMs: number;
  /** The periodic full dataplane pass. */
  readonly resyncIntervalMs: number;
  /** Undefined: flannel.<VNI>. */
  readonly vxlanDevice: string | undefined;
  readonly storeResetGraceMs: number;
  /** Undefined: the CNI service is off. */
  readonly cniSocket: string | undefined;
  /** Serve Services (cluster IPs, this node's pods as endpoints). */
  readonly services: boolean;
  /** The CNI plugin's pod records (its podRecordDir). */
  readonly podRecordDir: string;
  /** Undefined: the HTTP endpoint is off (port 0). */
  readonly healthz: { readonly ip: string; readonly port: number } | undefined;
  readonly log: { readonly level: LogLevel; readonly format: LogFormat };
}

function parsePort(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 65535)
    throw new InvalidArgumentError("--healthz-port", text, "must be a port number from 0 (off) to 65535");
  return Number(text);
}

export function parseRunOptions(raw: RawRunOptions): RunOptions {
  const leaseTtlSeconds = parseLeaseTtlSeconds(raw.subnetLeaseTtl);
  const masqResyncMs = parseDuration("--iptables-resync", raw.iptablesResync, 1000);
  const resyncIntervalMs = parseDuration("--resync-interval", raw.resyncInterval, 1000);
  const storeResetGraceMs = parseDuration("--store-reset-grace", raw.storeResetGrace, 1000);
  const healthzPort = parsePort(raw.healthzPort);
  if (!isIpv4(raw.healthzIp))
    throw new InvalidArgumentError(
      "--healthz-ip",
      raw.healthzIp,
      "must be an IPv4 address such as 127.0.0.1 or 0.0.0.0",
    );
  if (raw.publicIpv6 !== undefined && !isRoutableUnicast6(raw.publicIpv6))
    throw new InvalidArgumentError("--public-ipv6", raw.publicIpv6, PUBLIC_IPV6_RULE);
  if (raw.vxlanDevice !== undefined && !isPlainInterfaceName(raw.vxlanDevice))
    throw new InvalidArgumentError("--vxlan-device", raw.vxlanDevice, PLAIN_INTERFACE_NAME_RULE);
  // The socket the plugin's shim finds through the conflist's agentSocket: the same rules; "" is off.
  if (raw.cniSocket !== "" && !isCniSocketPath(raw.cniSocket))
    throw new InvalidArgumentError("--cni-socket", raw.cniSocket, `must be ${CNI_SOCKET_PATH_RULE}`);
  if (!raw.podRecordDir.startsWith("/"))
    throw new InvalidArgumentError(
      "--pod-record-dir",
      raw.podRecordDir,
      "must be an absolute path (the CNI plugin's podRecordDir)",
    );
  return {
    etcd: resolveEtcdOptions(raw, { requestTimeoutMs: DAEMON_ETCD_TIMEOUT_MS, retry: true }),
    registryPrefix: parsePrefix(raw.registryPrefix ?? DEFAULTS.registryPrefix, "--registry-prefix"),
    iface: raw.iface,
    publicIp: raw.publicIp,
    publicIpv6: raw.publicIpv6,
    subnetFile: raw.subnetFile,
    leaseTtlSeconds,
    ipMasq: raw.ipMasq,
    firewallBackend: raw.firewallBackend,
    masqResyncMs,
    resyncIntervalMs,
    vxlanDevice: raw.vxlanDevice,
    storeResetGraceMs,
    cniSocket: raw.cniSocket === "" ? undefined : raw.cniSocket,
    services: raw.services,
    podRecordDir: raw.podRecordDir,
    healthz: healthzPort === 0 ? undefined : { ip: raw.healthzIp, port: healthzPort },
    log: { level: raw.logLevel, format: raw.logFormat },
  };
}
