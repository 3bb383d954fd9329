// `dns`: the cluster DNS server (its own process and unit, trellis-dns.service). Flags here; the wiring of real
// adapters, logs, metrics and HTTP in ../dns-main.ts.
import { Option, type Command } from "commander";
import { DNS_DEFAULTS } from "../../config/dns-options.js";
import { printConfig } from "../config-file.js";
import { addEtcdOptions, addLogOptions, envName, flag, type DnsFlags } from "../options.js";
import { parseBool } from "./run.js";

export function registerDns(program: Command): void {
  const command = addEtcdOptions(
    program
      .command("dns")
      .description("run the cluster DNS server: Service and pod names from the registry, other names forwarded"),
  )
    .addOption(
      flag(
        "--iface <name|ip>",
        "interface (or one of its IPv4 addresses) whose address the server also listens on; default: the default route's",
      ),
    )
    .addOption(flag("--public-ip <ip>", "this node's address: listened on, and its endpoint of the DNS Service"))
    .addOption(
      flag(
        "--node-local-ip <ip>",
        'the address pods query (no NAT on the way); added to lo when no interface has it; "" for none',
        DNS_DEFAULTS.nodeLocalIp,
      ),
    )
    .addOption(flag("--port <port>", "UDP and TCP port of every listener", DNS_DEFAULTS.port))
    .addOption(
      flag("--resolv-conf <path>", "where the upstream resolvers for other names are read", DNS_DEFAULTS.resolvConf),
    )
    .addOption(flag("--ttl <duration>", "TTL of cluster answers (and how long a denial is cached)", DNS_DEFAULTS.ttl))
    .addOption(
      new Option(
        "--register [bool]",
        "publish this server as an endpoint of the DNS Service (kube-system/kube-dns), listening on the node's address for it",
      )
        .env(envName("--register"))
        .argParser(parseBool("--register"))
        .default(true),
    )
    .addOption(
      flag(
        "--endpoint-ttl <duration>",
        "TTL of the etcd lease of this server's endpoint: how long a server that died stays one",
        DNS_DEFAULTS.endpointTtl,
      ),
    )
    .addOption(
      flag(
        "--lameduck <duration>",
        "how long a stopping server answers on after withdrawing its endpoint, while every node's proxy drops it",
        DNS_DEFAULTS.lameduck,
      ),
    )
    // Not --healthz-*: the DNS unit reads the agent's environment file too, and must not take the agent's port.
    .addOption(
      flag("--status-ip <ip>", "address of the DNS server's /healthz, /readyz, /metrics and /status", "127.0.0.1"),
    )
    .addOption(flag("--status-port <port>", "their port; 0 turns them off", DNS_DEFAULTS.statusPort));
  addLogOptions(command)
    .addHelpText(
      "after",
      [
        "",
        "Examples:",
        "  trellis-agent dns --etcd-endpoints http://10.0.0.1:2379 --iface eth1",
        "  dig @169.254.20.10 nginx-service.default.svc.cluster.local",
        "  curl -s http://127.0.0.1:9809/readyz",
      ].join("\n"),
    )
    .action(async (flags: DnsFlags, self: Command) => {
      if (flags.printConfig === true) {
        process.stdout.write(printConfig(self));
        return;
      }
      const { runDns } = await import("../dns-main.js");
      await runDns(flags);
    });
}
