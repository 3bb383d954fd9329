// GC (1.1.0): frees every reservation (and pod record) the runtime no longer knows and deletes the host veths we made for
// attachments of this network it no longer knows — recognised by our mark (wiring/host-veth-name.ts), so the reference bridge
// plugin's veths on the same bridge, named the same way, are never touched. A null or missing list of valid
// attachments is the empty list (config.ts).
import { releaseAllExcept } from "../ipam/ipam.js";
import { hostVethMark, isNetworkMark } from "../wiring/host-veth-name.js";
import type { CommandContext, CommandOutput } from "./context.js";

export async function gc({ config, deps }: CommandContext): Promise<CommandOutput> {
  const valid = config.validAttachments;
  await releaseAllExcept(deps.store(config.dataDir), valid);
  if (config.podRecordDir !== "") {
    const records = deps.podRecords(config.podRecordDir, config.name);
    const known = new Set(valid.map((a) => `${a.containerId}\n${a.ifname}`));
    for (const attachment of records.attachments())
      if (!known.has(`${attachment.containerId}\n${attachment.ifname}`)) records.remove(attachment);
  }
  const keep = new Set(valid.map((attachment) => hostVethMark(config.name, attachment)));
  const host = await deps.hostKernel();
  try {
    for (const link of await host.listLinks()) {
      if (link.kind === "veth" && isNetworkMark(config.name, link.alias) && !keep.has(link.alias ?? ""))
        await host.deleteLink(link.index);
    }
  } finally {
    host.close();
  }
  return "";
}
