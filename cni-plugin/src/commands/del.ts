// DEL is best effort and needs nothing but the attachment: no subnet.env, no netns, no prevResult. Freeing the
// address and deleting the host veth (which takes the pod end with it) are both no-ops when already done, and a
// veth is deleted only when it is provably this attachment's (wiring/ownership.ts) — never by name alone.
import { attachmentOf } from "../env.js";
import { release } from "../ipam/ipam.js";
import { removeHostVeth } from "../wiring/ownership.js";
import type { CommandContext, CommandOutput } from "./context.js";
import { optionalPodKernel } from "./netns.js";

export async function del({ invocation, config, deps }: CommandContext): Promise<CommandOutput> {
  const attachment = attachmentOf(invocation);
  if (config.podRecordDir !== "") deps.podRecords(config.podRecordDir, config.name).remove(attachment);
  // The veth first, the address after: an address is never free while an interface still has it, and concurrent
  // DELs reach the kernel together instead of one IPAM transaction apart (each deletion waits out an RCU barrier,
  // which concurrent deletions share: 50 DELs 1.6 s one after another, ~0.3 s together).
  const pod = await optionalPodKernel(deps, invocation.netns);
  try {
    const host = await deps.hostKernel();
    try {
      await removeHostVeth(
        host,
        config.name,
        attachment,
        pod === undefined ? undefined : { kernel: pod, ifname: attachment.ifname },
      );
    } finally {
      host.close();
    }
  } finally {
    pod?.close();
  }
  await release(deps.store(config.dataDir), attachment);
  return "";
}
