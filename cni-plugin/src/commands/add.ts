// ADD: lease → address → wiring → result. The netns is opened first (a bad CNI_NETNS fails before any state is
// made); if wiring fails, what this ADD made is undone before the error is reported.
import { attachmentOf } from "../env.js";
import { allocate, release } from "../ipam/ipam.js";
import { addResult, inNetwork, mergeResults, podNetworkSpec } from "../pod-spec.js";
import { formatResult, parsePrevResult } from "../result.js";
import { readLease } from "../subnet.js";
import { removeHostVeth, setupPod } from "../wiring/pod-network.js";
import type { CommandContext, CommandOutput } from "./context.js";
import { requireNetns, withPodAndHost } from "./netns.js";

export async function add({ invocation, config, deps }: CommandContext): Promise<CommandOutput> {
  const attachment = attachmentOf(invocation);
  const netns = requireNetns(invocation);
  const previous = config.prevResult === undefined ? undefined : parsePrevResult(config.prevResult);
  const lease = readLease(deps, config.subnetFile);
  return withPodAndHost(deps, netns, async (pod, host) => {
    const store = deps.store(config.dataDir);
    const ip = await allocate(store, lease, attachment);
    const spec = podNetworkSpec(config, lease, attachment, netns, ip);
    let result;
    try {
      result = addResult(spec, await setupPod(host, pod, spec, inNetwork(lease)), config.dns);
    } catch (error) {
      await removeHostVeth(host, spec.hostVeth).catch(() => undefined);
      await release(store, attachment).catch(() => undefined);
      throw error;
    }
    return JSON.stringify(
      formatResult(previous === undefined ? result : mergeResults(previous, result), config.cniVersion),
    );
  });
}
