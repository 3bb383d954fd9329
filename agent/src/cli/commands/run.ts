// `run`: the node daemon. SIGTERM/SIGINT stop it without touching the datapath.
import { Option, type Command } from "commander";
import { systemClock } from "../../../../lib/src/clock.js";
import { InvalidArgumentError } from "../../../../lib/src/errors.js";
import { nodeFileStore } from "../../../../lib/src/files.js";
import { processRunner } from "../../../../lib/src/command.js";
import { parseDuration } from "../../../../lib/src/duration.js";
import { chooseFirewall, type FirewallBackend } from "../../dataplane/firewall.js";
import { DEFAULTS, parseLeaseTtlSeconds } from "../../config/agent-options.js";
import { Agent } from "../../daemon/agent.js";
import { logAgentEvent } from "../agent-log.js";
import { openRegistry } from "../context.js";
import { addEtcdOptions, addNodeOptions, envName, flag, LOG_LEVELS, type EtcdFlags, type LogFormat, type LogLevel, type NodeFlags } from "../options.js";

interface RunFlags extends EtcdFlags, NodeFlags {
  subnetLeaseTtl: string;
  ipMasq: boolean;
  iptablesResync: string;
  resyncInterval: string;
  vxlanDevice?: string;
  firewallBackend: FirewallBackend;
  logLevel: LogLevel;
  logFormat: LogFormat;
}

export function parseBool(field: string): (text: string) => boolean {
  return (text) => {
    if (/^(true|1|yes|on)$/i.test(text)) return true;
    if (/^(false|0|no|off)$/i.test(text)) return false;
    throw new InvalidArgumentError(field, text, "must be true or false");
  };
}

export function registerRun(program: Command): void {
  addNodeOptions(addEtcdOptions(program.command("run").description("run the node agent (lease, peers, dataplane)")))
    .addOption(flag("--subnet-lease-ttl <duration>", "TTL of this node's lease, renewed by the agent", DEFAULTS.subnetLeaseTtl))
    .addOption(
      new Option("--ip-masq [bool]", "masquerade traffic from pods to outside the network")
        .env(envName("--ip-masq"))
        .argParser(parseBool("--ip-masq"))
        .default(true),
    )
    .addOption(flag("--iptables-resync <duration>", "how often the masquerade rules are checked and re-installed if changed", "5s"))
    .addOption(flag("--resync-interval <duration>", "full dataplane check interval (kernel events repair drift at once)", "10s"))
    .addOption(flag("--vxlan-device <name>", "name of the VXLAN device (default flannel.<VNI>)"))
    .addOption(new Option("--firewall-backend <kind>", "masquerade rules through nftables or iptables").choices(["auto", "nftables", "iptables"]).env(envName("--firewall-backend")).default("auto"))
    .addOption(new Option("--log-level <level>", "log level").choices(LOG_LEVELS).env(envName("--log-level")).default("info"))
    .addOption(
      new Option("--log-format <format>", "json lines, or text for terminals").choices(["json", "text"]).env(envName("--log-format"))
        .default(process.stderr.isTTY ? "text" : "json"),
    )
    .addHelpText("after", "\nExamples:\n  trellis-agent run --etcd-endpoints http://10.0.0.1:2379 --iface eth1\n  TRELLIS_IFACE=eth1 TRELLIS_IP_MASQ=false trellis-agent run")
    .action(async (flags: RunFlags) => {
      const leaseTtlSeconds = parseLeaseTtlSeconds(flags.subnetLeaseTtl);
      const masqResyncMs = parseDuration("--iptables-resync", flags.iptablesResync, 1000);
      const resyncIntervalMs = parseDuration("--resync-interval", flags.resyncInterval, 1000);
      if (flags.vxlanDevice !== undefined && !/^[A-Za-z0-9._-]{1,15}$/.test(flags.vxlanDevice)) {
        throw new InvalidArgumentError("--vxlan-device", flags.vxlanDevice, "must be an interface name of 1-15 letters, digits, '.', '_' or '-'");
      }
      const [{ createLogger }, { KernelHostNetwork }, { openKernel }] = await Promise.all([
        import("../logger.js"),
        import("../../node/kernel-host-network.js"),
        import("../../../../lib/src/netlink/rtnetlink-kernel.js"),
      ]);
      const log = createLogger(flags.logLevel, flags.logFormat);
      const controller = new AbortController();
      const stop = (signal: NodeJS.Signals): void => {
        log.info("stopping; the datapath stays in place", { signal });
        controller.abort(new Error(`received ${signal}`));
      };
      process.once("SIGTERM", stop);
      process.once("SIGINT", stop);

      const { registry, prefix } = await openRegistry(flags, "daemon");
      const kernel = openKernel();
      try {
        const firewall = flags.ipMasq ? await chooseFirewall(processRunner, flags.firewallBackend) : undefined;
        const agent = new Agent(
          {
            etcdPrefix: prefix,
            subnetFile: flags.subnetFile,
            leaseTtlSeconds,
            ipMasq: flags.ipMasq,
            iface: flags.iface,
            publicIp: flags.publicIp,
            vxlanDevice: flags.vxlanDevice,
            resyncIntervalMs,
            masqResyncMs,
          },
          { registry, clock: systemClock, files: nodeFileStore, host: new KernelHostNetwork(kernel), kernel, firewall },
        );
        agent.events.on((event) => { logAgentEvent(log, event); });
        const started = await agent.start(controller.signal);
        await started.done;
      } catch (error) {
        if (!controller.signal.aborted) throw error;
      } finally {
        registry.close();
        kernel.close();
        await new Promise<void>((resolve) => { log.on("finish", resolve); log.end(); });
      }
    });
}
