// `status`: every node's subnet, from etcd.
import { Option, type Command } from "commander";
import { collectLeaseRows, formatLeaseJson, formatLeaseTable } from "../../status/subnet-listing.js";
import { withRegistry } from "../context.js";
import { detectPublicIp, subnetFromFile } from "../identity.js";
import { addEtcdOptions, addNodeOptions, type EtcdFlags, type NodeFlags } from "../options.js";

interface StatusFlags extends EtcdFlags, NodeFlags {
  output: "table" | "json";
}

export function registerStatus(program: Command): void {
  addNodeOptions(addEtcdOptions(program.command("status").description("list every node's subnet lease (* marks this node)")))
    .addOption(new Option("-o, --output <format>", "output format").choices(["table", "json"]).default("table"))
    .addHelpText("after", "\nExamples:\n  trellis-agent status\n  trellis-agent status -o json | jq '.leases[] | select(.self)'\n  TRELLIS_ETCD_ENDPOINTS=https://10.0.0.1:2379 trellis-agent status --etcd-cafile ca.pem")
    .action(async (flags: StatusFlags) => {
      // Identity is best effort: status also runs on machines that are not nodes.
      const publicIp = await detectPublicIp(flags).catch(() => undefined);
      const subnet = await subnetFromFile(flags.subnetFile);
      const rows = await withRegistry(flags, ({ registry }) => collectLeaseRows(registry, { publicIp, subnet }, Date.now()));
      process.stdout.write(flags.output === "json" ? formatLeaseJson(rows) : formatLeaseTable(rows));
    });
}
