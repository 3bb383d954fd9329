// `network set` / `network show`: the flannel-format config at <prefix>/config.
import { Option, type Command } from "commander";
import { formatNetworkConfig } from "../../config/network-config.js";
import { readNetworkConfig, writeNetworkConfig } from "../../lease/admin.js";
import { withRegistry } from "../context.js";
import { addEtcdOptions, type EtcdFlags } from "../options.js";

interface SetFlags extends EtcdFlags {
  network: string;
  subnetLen?: string;
  subnetMin?: string;
  subnetMax?: string;
  backend: string;
  vni?: string;
  port?: string;
  directRouting?: boolean;
  ipv6Network?: string;
  ipv6Only?: boolean;
  ipv6SubnetLen?: string;
  ipv6SubnetMin?: string;
  ipv6SubnetMax?: string;
}

/** Numbers from flags stay strings when malformed so validation names the field and the text given. */
function numeric(text: string | undefined): number | string | undefined {
  if (text === undefined) return undefined;
  return /^-?\d+$/.test(text.trim()) ? Number(text) : text;
}

export function registerNetwork(program: Command): void {
  const network = program
    .command("network")
    .description("show or write the network config in etcd")
    .addHelpText(
      "after",
      "\nExamples:\n  trellis-agent network set --network 172.30.0.0/16\n  trellis-agent network show",
    );

  addEtcdOptions(
    network
      .command("set")
      .description("validate and write the network config (flannel's JSON format)")
      .requiredOption("--network <cidr>", "the pod network, e.g. 172.30.0.0/16", "172.30.0.0/16")
      .option(
        "--subnet-len <bits>",
        "prefix length of each node's subnet (default: 24, or network+2 for small networks)",
      )
      .option("--subnet-min <ip>", "first subnet that may be leased (default: the second subnet)")
      .option("--subnet-max <ip>", "last subnet that may be leased (default: the last subnet)")
      .addOption(new Option("--backend <type>", "dataplane backend").choices(["vxlan", "host-gw"]).default("vxlan"))
      .option("--vni <id>", "VXLAN network identifier (default 1)")
      .option("--port <port>", "VXLAN UDP port (default 8472)")
      .option("--direct-routing", "vxlan: route directly to peers on the same L2 network")
      .option("--ipv6-network <cidr>", "an IPv6 pod network as well (dual-stack, EnableIPv6), e.g. fd30::/56")
      .option("--ipv6-only", "no IPv4 pod network (EnableIPv4 false); needs --ipv6-network")
      .option("--ipv6-subnet-len <bits>", "prefix length of each node's IPv6 subnet (default: 64)")
      .option("--ipv6-subnet-min <ip>", "first IPv6 subnet that may be leased (default: the second)")
      .option("--ipv6-subnet-max <ip>", "last IPv6 subnet that may be leased (default: the last)"),
  )
    .addHelpText(
      "after",
      "\nExamples:\n  trellis-agent network set --network 172.30.0.0/16\n  trellis-agent network set --network 10.244.0.0/16 --backend host-gw\n  trellis-agent network set --network 172.30.0.0/16 --vni 42 --direct-routing\n  trellis-agent network set --network 172.30.0.0/16 --ipv6-network fd30::/56\n  trellis-agent network set --ipv6-only --ipv6-network fd30::/56",
    )
    .action(async (flags: SetFlags) => {
      const backend: Record<string, unknown> = { Type: flags.backend };
      if (flags.vni !== undefined) backend.VNI = numeric(flags.vni);
      if (flags.port !== undefined) backend.Port = numeric(flags.port);
      if (flags.directRouting === true) backend.DirectRouting = true;
      const raw: Record<string, unknown> =
        flags.ipv6Only === true
          ? { EnableIPv4: false, Backend: backend }
          : { Network: flags.network, Backend: backend };
      if (flags.subnetLen !== undefined) raw.SubnetLen = numeric(flags.subnetLen);
      if (flags.subnetMin !== undefined) raw.SubnetMin = flags.subnetMin;
      if (flags.subnetMax !== undefined) raw.SubnetMax = flags.subnetMax;
      const v6Given = [flags.ipv6SubnetLen, flags.ipv6SubnetMin, flags.ipv6SubnetMax].some((f) => f !== undefined);
      if (flags.ipv6Network !== undefined || v6Given || flags.ipv6Only === true) {
        // Without --ipv6-network the validation names IPv6Network as the missing field.
        raw.EnableIPv6 = true;
        if (flags.ipv6Network !== undefined) raw.IPv6Network = flags.ipv6Network;
        if (flags.ipv6SubnetLen !== undefined) raw.IPv6SubnetLen = numeric(flags.ipv6SubnetLen);
        if (flags.ipv6SubnetMin !== undefined) raw.IPv6SubnetMin = flags.ipv6SubnetMin;
        if (flags.ipv6SubnetMax !== undefined) raw.IPv6SubnetMax = flags.ipv6SubnetMax;
      }
      const config = await withRegistry(flags, ({ registry }) => writeNetworkConfig(registry, raw));
      process.stdout.write(`${JSON.stringify(JSON.parse(formatNetworkConfig(config)), null, 2)}\n`);
    });

  addEtcdOptions(network.command("show").description("print the network config with its defaults filled in"))
    .option("--raw", "print the stored text as is, without validating it")
    .addHelpText(
      "after",
      "\nExamples:\n  trellis-agent network show\n  trellis-agent network show --raw --etcd-prefix /coreos.com/network",
    )
    .action(async (flags: EtcdFlags & { raw?: boolean }) => {
      const text = await withRegistry(flags, async ({ registry, prefix }) => {
        if (flags.raw === true) return (await registry.getNetworkConfig()) ?? "";
        return formatNetworkConfig(await readNetworkConfig(registry, prefix));
      });
      process.stdout.write(flags.raw === true ? `${text}\n` : `${JSON.stringify(JSON.parse(text), null, 2)}\n`);
    });
}
