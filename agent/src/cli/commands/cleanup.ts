// `cleanup`: remove this node's datapath (routes, device, rules, subnet file). The etcd lease stays.
import type { Command } from "commander";
import { processRunner } from "../../../../lib/src/command.js";
import { nodeFileStore } from "../../../../lib/src/files.js";
import { flag, addNodeOptions, type NodeFlags } from "../options.js";

export function registerCleanup(program: Command): void {
  addNodeOptions(
    program
      .command("cleanup")
      .description(
        "remove everything the agent created on this node (routes, vxlan device, masquerade rules, subnet file)",
      ),
  )
    .addOption(
      flag("--vxlan-device <name>", "the VXLAN device to remove (default: every vxlan device named flannel.<N>)"),
    )
    .addHelpText(
      "after",
      "\nStop the agent first (it would put everything back). The lease in etcd stays: `trellis-agent leave` releases it.\n\nExamples:\n  trellis-agent cleanup --subnet-file /run/flannel/subnet.env\n  systemctl stop trellis-agent && trellis-agent cleanup",
    )
    .action(async (flags: NodeFlags & { vxlanDevice?: string }) => {
      const [{ openKernel }, { cleanupNode }, { installedFirewalls }] = await Promise.all([
        import("../../../../lib/src/netlink/rtnetlink-kernel.js"),
        import("../../dataplane/cleanup.js"),
        import("../../dataplane/firewall.js"),
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
        process.stdout.write(
          `removed ${summary.routes} route(s), device(s): ${summary.devices.join(", ") || "none"}, rules: ${summary.firewalls.join(", ") || "none"}, ` +
            `subnet file: ${summary.subnetFile ? flags.subnetFile : "none"}\n`,
        );
      } finally {
        kernel.close();
      }
    });
}
