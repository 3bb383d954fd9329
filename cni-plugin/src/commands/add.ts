// ADD: lease → checks → address → wiring → result. Everything that can refuse the request does so before anything
// is made: a namespace that is the caller's own, an attachment already wired elsewhere, a requested IP outside the
// lease or taken. If wiring fails, only what this ADD made is undone (a repeated ADD keeps the pod it found).
import { encodePodRecord, podIdentity } from "#lib/pod-record.js";
import { attachmentOf, type Attachment } from "../env.js";
import { allocate, commit, undo } from "../ipam/ipam.js";
import { podDns } from "../pod-dns.js";
import { addResult, inNetwork, mergeResults, podNetworkSpec } from "../pod-spec.js";
import { requestsOf } from "../requested.js";
import { formatResult, parsePrevResult } from "../result.js";
import { readLease } from "../subnet.js";
import { hostVethMark } from "../wiring/host-veth-name.js";
import { findHostVeth, freeHostVethName } from "../wiring/ownership.js";
import { setupPod } from "../wiring/pod-network.js";
import type { CommandContext, CommandOutput } from "./context.js";
import { refuseCallerNamespace, requireNetns, withPodAndHost } from "./netns.js";

/**
 * The pod as its node's agent publishes it (a Service endpoint), when the runtime named it; any older record of the
 * attachment goes, so a pod the runtime stopped naming is no endpoint. Records (and the registry) are IPv4: a pod
 * without an IPv4 address (an IPv6-only network) is no endpoint.
 */
function recordPod(
  deps: CommandContext["deps"],
  config: CommandContext["config"],
  invocation: CommandContext["invocation"],
  attachment: Attachment,
  ip: number | undefined,
): void {
  if (config.podRecordDir === "") return;
  const records = deps.podRecords(config.podRecordDir, config.name);
  const identity = podIdentity(invocation.args);
  if (identity === undefined || ip === undefined) records.remove(attachment);
  else records.write(attachment, encodePodRecord({ ...identity, labels: config.labels, ip, ...attachment }));
}

export async function add({ invocation, config, deps }: CommandContext): Promise<CommandOutput> {
  const attachment = attachmentOf(invocation);
  const netns = requireNetns(invocation);
  const previous = config.prevResult === undefined ? undefined : parsePrevResult(config.prevResult);
  const requests = requestsOf(invocation, config);
  const lease = readLease(deps, config.subnetFile);
  return withPodAndHost(deps, netns, async (pod, host) => {
    refuseCallerNamespace(deps, pod, netns);
    const existing = await findHostVeth(host, config.name, attachment, { kernel: pod, ifname: attachment.ifname });
    const hostVeth = existing?.name ?? (await freeHostVethName(host, attachment));
    const store = deps.store(config.dataDir);
    const allocation = await allocate(store, lease, attachment, requests.ips);
    let result;
    try {
      const spec = podNetworkSpec(config, lease, attachment, {
        netns,
        podIps: { ipv4: allocation.ipv4?.ip, ipv6: allocation.ipv6?.ip },
        hostVeth,
        mac: requests.mac,
      });
      const dns = podDns(config.dns, podIdentity(invocation.args)?.namespace);
      result = addResult(spec, await setupPod(host, pod, spec, inNetwork(lease), existing), dns);
    } catch (error) {
      if (existing === undefined) {
        const made = await host.getLink(hostVeth).catch(() => undefined);
        if (made?.alias === hostVethMark(config.name, attachment))
          await host.deleteLink(made.index).catch(() => undefined);
      }
      await undo(store, allocation).catch(() => undefined);
      throw error;
    }
    await commit(store, allocation);
    recordPod(deps, config, invocation, attachment, allocation.ipv4?.ip);
    return JSON.stringify(
      formatResult(previous === undefined ? result : mergeResults(previous, result), config.cniVersion),
    );
  });
}
