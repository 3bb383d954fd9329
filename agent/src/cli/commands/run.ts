// `run`: the node daemon. Flags here; the wiring of real adapters, logs, metrics and HTTP in ../daemon-main.ts.
import { Option, type Command } from "commander";
import { InvalidArgumentError } from "#lib/errors.js";
import { DEFAULTS } from "../../config/agent-options.js";
import { FIREWALL_CHOICES } from "../../config/run-options.js";
import { printConfig } from "../config-file.js";
import {
  addEtcdOptions,
  addHealthzOptions,
  addLogOptions,
  addNodeOptions,
  envName,
  flag,
  type RunFlags,
} from "../options.js";

export function parseBool(field: string): (text: string) => boolean {
  return (text) => {
    if (/^(true|1|yes|on)$/i.test(text)) return true;
    if (/^(false|0|no|off)$/i.test(text)) return false;
    throw new InvalidArgumentError(field, text, "must be true or false");
  };
}

export function registerRun(program: Command): void {
  const command = addHealthzOptions(
    addNodeOptions(
      addEtcdOptions(
        program.command("run").description("run the node agent (lease, peers, dataplane, health and metrics)"),
      ),
    ),
  )
    .addOption(
      flag(
        "--public-ipv6 <ip>",
        "IPv6 address other nodes use to reach this one (an IPv6 pod network only); default: the --iface's first global IPv6 address",
      ),
    )
    .addOption(
      flag("--subnet-lease-ttl <duration>", "TTL of this node's lease, renewed by the agent", DEFAULTS.subnetLeaseTtl),
    )
    .addOption(
      new Option("--ip-masq [bool]", "masquerade traffic from pods to outside the network")
        .env(envName("--ip-masq"))
        .argParser(parseBool("--ip-masq"))
        .default(true),
    )
    .addOption(
      flag(
        "--iptables-resync <duration>",
        "how often the masquerade rules are checked and re-installed if changed",
        DEFAULTS.iptablesResync,
      ),
    )
    .addOption(
      flag(
        "--resync-interval <duration>",
        "full dataplane check interval (kernel events repair drift at once)",
        DEFAULTS.resyncInterval,
      ),
    )
    .addOption(flag("--vxlan-device <name>", "name of the VXLAN device (default flannel.<VNI>)"))
    .addOption(
      flag(
        "--store-reset-grace <duration>",
        "after etcd was restored empty or rebuilt, how long peers missing from it keep their routes",
        DEFAULTS.storeResetGrace,
      ),
    )
    .addOption(
      flag(
        "--cni-socket <path>",
        'unix socket where the agent does the CNI plugin\'s work for it (root only); "" turns it off',
        DEFAULTS.cniSocket,
      ),
    )
    .addOption(
      new Option("--services [bool]", "serve Services: cluster IPs in the kernel, this node's pods as their endpoints")
        .env(envName("--services"))
        .argParser(parseBool("--services"))
        .default(true),
    )
    .addOption(
      flag(
        "--pod-record-dir <path>",
        "where the CNI plugin records the pods it wires (its podRecordDir), published as Service endpoints",
        DEFAULTS.podRecordDir,
      ),
    )
    .addOption(
      new Option("--firewall-backend <kind>", "masquerade rules through nftables or iptables")
        .choices(FIREWALL_CHOICES)
        .env(envName("--firewall-backend"))
        .default("auto"),
    );
  addLogOptions(command)
    .addHelpText(
      "after",
      [
        "",
        "Examples:",
        "  trellis-agent run --etcd-endpoints http://10.0.0.1:2379 --iface eth1",
        "  TRELLIS_IFACE=eth1 TRELLIS_IP_MASQ=false trellis-agent run",
        "  trellis-agent run --config /etc/trellis/agent.json --print-config",
        "  curl -s http://127.0.0.1:9808/readyz",
      ].join("\n"),
    )
    .action(async (flags: RunFlags, self: Command) => {
      if (flags.printConfig === true) {
        process.stdout.write(printConfig(self));
        return;
      }
      const { runDaemon } = await import("../daemon-main.js");
      await runDaemon(flags);
    });
}
