// `run`: the node daemon. Flags here; the wiring of real adapters, logs, metrics and HTTP in ../daemon-main.ts.
import { Option, type Command } from "commander";
import { InvalidArgumentError } from "../../../../lib/src/errors.js";
import { DEFAULTS } from "../../config/agent-options.js";
import { printConfig } from "../config-file.js";
import {
  addEtcdOptions,
  addHealthzOptions,
  addNodeOptions,
  envName,
  flag,
  LOG_LEVELS,
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
  addHealthzOptions(
    addNodeOptions(
      addEtcdOptions(
        program.command("run").description("run the node agent (lease, peers, dataplane, health and metrics)"),
      ),
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
        "5s",
      ),
    )
    .addOption(
      flag("--resync-interval <duration>", "full dataplane check interval (kernel events repair drift at once)", "10s"),
    )
    .addOption(flag("--vxlan-device <name>", "name of the VXLAN device (default flannel.<VNI>)"))
    .addOption(
      flag(
        "--cni-socket <path>",
        'unix socket where the agent does the CNI plugin\'s work for it (root only); "" turns it off',
        DEFAULTS.cniSocket,
      ),
    )
    .addOption(
      new Option("--firewall-backend <kind>", "masquerade rules through nftables or iptables")
        .choices(["auto", "nftables", "iptables"])
        .env(envName("--firewall-backend"))
        .default("auto"),
    )
    .addOption(
      new Option("--log-level <level>", "log level").choices(LOG_LEVELS).env(envName("--log-level")).default("info"),
    )
    .addOption(
      new Option("--log-format <format>", "json lines, or text for terminals")
        .choices(["json", "text"])
        .env(envName("--log-format"))
        .default(process.stderr.isTTY ? "text" : "json"),
    )
    .option(
      "--print-config",
      "print the effective configuration (with where each value came from, secrets masked) and exit",
    )
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
    .action(async (flags: RunFlags, command: Command) => {
      if (flags.printConfig === true) {
        process.stdout.write(printConfig(command));
        return;
      }
      const { runDaemon } = await import("../daemon-main.js");
      await runDaemon(flags);
    });
}
