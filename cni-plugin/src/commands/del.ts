// DEL is best effort and needs nothing but the attachment: no subnet.env, no netns, no prevResult. Freeing the
// address and deleting the host veth (which takes the pod end with it) are both no-ops when already done.
import { attachmentOf } from "../env.js";
import { release } from "../ipam/ipam.js";
import { hostVethName } from "../wiring/host-veth-name.js";
import { removeHostVeth } from "../wiring/pod-network.js";
import type { CommandContext, CommandOutput } from "./context.js";

export async function del({ invocation, config, deps }: CommandContext): Promise<CommandOutput> {
  const attachment = attachmentOf(invocation);
  await release(deps.store(config.dataDir), attachment);
  const host = await deps.hostKernel();
  try {
    await removeHostVeth(host, hostVethName(attachment));
  } finally {
    host.close();
  }
  return "";
}
