// Flag definitions shared by the subcommands. Every flag is named as flannel names it and can also be set by an
// environment variable TRELLIS_<FLAG_IN_UPPER_SNAKE_CASE>; a flag wins over the variable, which wins over the default.
import { Option, type Command } from "commander";
import { DEFAULTS, ENV_PREFIX } from "../config/agent-options.js";
import { LOG_FORMATS, LOG_LEVELS, type RawRunOptions } from "../config/run-options.js";
import type { RawDnsOptions } from "../config/dns-options.js";

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
    .addOption(
      flag(
        "--registry-prefix <path>",
        "etcd key prefix of trellis's service registry (Services, pods)",
        DEFAULTS.registryPrefix,
      ),
    )
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

/** --log-level and --log-format, as every daemon command takes them. */
export function addLogOptions(command: Command): Command {
  return command
    .addOption(
      new Option("--log-level <level>", "log level").choices(LOG_LEVELS).env(envName("--log-level")).default("info"),
    )
    .addOption(
      new Option("--log-format <format>", "json lines, or text for terminals")
        .choices(LOG_FORMATS)
        .env(envName("--log-format"))
        .default(process.stderr.isTTY ? "text" : "json"),
    )
    .option(
      "--print-config",
      "print the effective configuration (with where each value came from, secrets masked) and exit",
    );
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
  registryPrefix?: string;
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

/** `run`'s flags as commander gives them: validated into RunOptions by config/run-options.ts. */
export interface RunFlags extends EtcdFlags, NodeFlags, HealthzFlags, RawRunOptions {
  vxlanDevice?: string;
  printConfig?: boolean;
}

/** `dns`'s flags as commander gives them: validated into DnsOptions by config/dns-options.ts. */
export interface DnsFlags extends EtcdFlags, RawDnsOptions {
  printConfig?: boolean;
}
