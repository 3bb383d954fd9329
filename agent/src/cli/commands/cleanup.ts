// `cleanup`: remove this node's datapath (routes, device, rules, subnet file). The etcd lease stays.
import type { Command } from "commander";
import { processRunner } from "#lib/command.js";
import { nodeFileStore } from "#lib/files.js";
import { flag, addNodeOptions, type NodeFlags } from "../options.js";

/** True when there was a service table to remove. */
async function removeServiceRules(): Promise<boolean> {
  const { NftProxyTable } = await import("../../proxy/nft-proxy-table.js");
  const table = new NftProxyTable(processRunner);
  const existed = (await table.read()) !== undefined;
  await table.remove();
  return existed;
}

export function registerCleanup(program: Command): void {
  addNodeOptions(
    program
      .command("cleanup")
      .description(
        "remove everything the agent created on this node (routes, vxlan device, masquerade and service rules, subnet file)",
      ),
  )
    .addOption(
      flag(
        "--vxlan-device <name>",
        "the VXLAN device to remove, if it is a vxlan device (default: every vxlan device named flannel.<N>; vxlan devices named flannel-v6.<N> always)",
      ),
    )
    .addHelpText(
      "after",
      "\nStop the agent first (it would put everything back). The lease in etcd stays: `trellis-agent leave` releases it.\n\nExamples:\n  trellis-agent cleanup --subnet-file /run/flannel/subnet.env\n  systemctl stop trellis-agent && trellis-agent cleanup",
    )
    .action(async (flags: NodeFlags & { vxlanDevice?: string }) => {
      const [{ openKernel }, { cleanupNode }, { installedFirewalls }] = await Promise.all([
        import("#lib/netlink/rtnetlink-kernel.js"),
        import("../../dataplane/cleanup.js"),
        import("../../dataplane/choose-firewall.js"),
      ]);
      const kernel = openKernel();
      try {
        // Rules may be in either backend (an earlier run may have used the other): remove both where the tool exists.
        const firewalls = await installedFirewalls(processRunner);
        const summary = await cleanupNode({
          kernel,
          firewalls,
          files: nodeFileStore,
          subnetFile: flags.subnetFile,
          vxlanDevice: flags.vxlanDevice,
        });
        // The service rules (table ip trellis-services): kept when the agent stops, removed only here.
        const services = firewalls.some((f) => f.kind === "nftables") ? await removeServiceRules() : false;
        process.stdout.write(
          `removed ${summary.routes} route(s), device(s): ${summary.devices.join(", ") || "none"}, rules: ${summary.firewalls.join(", ") || "none"}, ` +
            `service rules: ${services ? "yes" : "none"}, subnet file: ${summary.subnetFile ? flags.subnetFile : "none"}\n`,
        );
        for (const link of summary.kept)
          process.stderr.write(`trellis-agent: kept ${link}: not a vxlan device, so not ours to delete\n`);
      } finally {
        kernel.close();
      }
    });
}
