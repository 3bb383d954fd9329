// GC (1.1.0): frees every reservation the runtime no longer knows, deletes their host veths, and deletes veths
// on our bridge with our naming pattern that belong to no valid attachment (e.g. after a lost reservation).
import { CniCode, CniError } from "../cni-error.js";
import { releaseAllExcept } from "../ipam/ipam.js";
import { HOST_VETH_PATTERN, hostVethName } from "../wiring/host-veth-name.js";
import { removeHostVeth } from "../wiring/pod-network.js";
import type { CommandContext, CommandOutput } from "./context.js";

export async function gc({ config, deps }: CommandContext): Promise<CommandOutput> {
  const valid = config.validAttachments;
  if (valid === undefined) {
    throw new CniError(
      CniCode.INVALID_CONFIG,
      "config field cni.dev/valid-attachments (missing) is invalid: GC needs the list of attachments to keep",
    );
  }
  const freed = await releaseAllExcept(deps.store(config.dataDir), valid);
  const host = await deps.hostKernel();
  try {
    for (const reservation of freed) await removeHostVeth(host, hostVethName(reservation));
    const keep = new Set(valid.map(hostVethName));
    const bridge = await host.getLink(config.bridge);
    if (bridge !== undefined) {
      for (const link of await host.listLinks()) {
        if (
          link.kind === "veth" &&
          link.masterIndex === bridge.index &&
          HOST_VETH_PATTERN.test(link.name) &&
          !keep.has(link.name)
        ) {
          await host.deleteLink(link.index);
        }
      }
    }
  } finally {
    host.close();
  }
  return "";
}
