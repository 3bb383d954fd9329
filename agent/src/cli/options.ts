// Flag definitions shared by the subcommands. Every flag is named as flannel names it and can also be set by an
// environment variable TRELLIS_<FLAG_IN_UPPER_SNAKE_CASE>; a flag wins over the variable, which wins over the default.
import { Option, type Command } from "commander";
import { DEFAULTS, ENV_PREFIX } from "../config/agent-options.js";

export type LogFormat = "json" | "text";
export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function envName(flag: string): string {
  return ENV_PREFIX + flag.replace(/^--/, "").replace(/-/g, "_").toUpperCase();
}

/** `--flag <value>` bound to its environment variable. */
export function flag(flags: string, description: string, defaultValue?: string): Option {
  const long = /--[a-z0-9-]+/.exec(flags)?.[0] ?? flags;
  const option = new Option(flags, description).env(envName(long));
  return defaultValue === undefined ? option : option.default(defaultValue);
}

export function addEtcdOptions(command: Command): Command {
  return command
    .addOption(
      flag(
        "--config <path>",
        `JSON file of option values, keys named as the flags (default ${DEFAULTS.configFile} when it exists)`,
      ),
    )
    .addOption(flag("--etcd-endpoints <urls>", "comma-separated etcd endpoints", DEFAULTS.etcdEndpoints))
    .addOption(flag("--etcd-prefix <path>", "etcd key prefix of the network", DEFAULTS.etcdPrefix))
    .addOption(flag("--etcd-cafile <path>", "CA certificate to verify etcd (PEM)"))
    .addOption(flag("--etcd-certfile <path>", "client certificate for etcd (PEM)"))
    .addOption(flag("--etcd-keyfile <path>", "client key for etcd (PEM)"))
    .addOption(flag("--etcd-username <name>", "etcd user (password auth)"))
    .addOption(flag("--etcd-password <password>", "etcd password (prefer the environment variable: flags show in ps)"));
}

export function addNodeOptions(command: Command): Command {
  return command
    .addOption(
      flag(
        "--iface <name|ip>",
        "interface (or one of its IPv4 addresses) for inter-node traffic; default: the default route's",
      ),
    )
    .addOption(flag("--public-ip <ip>", "IP other nodes use to reach this one; default: the --iface address"))
    .addOption(flag("--subnet-file <path>", "where the node's lease is written for CNI plugins", DEFAULTS.subnetFile));
}

export function addHealthzOptions(command: Command): Command {
  return command
    .addOption(
      flag("--healthz-ip <ip>", "address of the agent's /healthz, /readyz, /metrics and /status", DEFAULTS.healthzIp),
    )
    .addOption(
      flag(
        "--healthz-port <port>",
        "port of /healthz, /readyz, /metrics and /status; 0 turns the endpoint off",
        DEFAULTS.healthzPort,
      ),
    );
}

export interface HealthzFlags {
  healthzIp: string;
  healthzPort: string;
}

export interface EtcdFlags {
  config?: string;
  etcdEndpoints?: string;
  etcdPrefix?: string;
  etcdCafile?: string;
  etcdCertfile?: string;
  etcdKeyfile?: string;
  etcdUsername?: string;
  etcdPassword?: string;
}

export interface NodeFlags {
  iface?: string;
  publicIp?: string;
  subnetFile: string;
}

export interface RunFlags extends EtcdFlags, NodeFlags, HealthzFlags {
  subnetLeaseTtl: string;
  ipMasq: boolean;
  iptablesResync: string;
  resyncInterval: string;
  vxlanDevice?: string;
  cniSocket: string;
  firewallBackend: "auto" | "nftables" | "iptables";
  logLevel: LogLevel;
  logFormat: LogFormat;
  printConfig?: boolean;
}
