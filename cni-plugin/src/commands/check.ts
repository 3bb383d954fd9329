// CHECK: the reservation, the prevResult and the kernel must all agree with what ADD set up; every difference is
// named in one error (code 103).
import { formatIpv4 } from "../../../lib/src/ipv4.js";
import { CniCode, CniError } from "../cni-error.js";
import { attachmentOf } from "../env.js";
import { isAssignable } from "../ipam/choose.js";
import { reservationsOf } from "../ipam/ipam.js";
import { podNetworkSpec } from "../pod-spec.js";
import { parsePrevResult, podAddress } from "../result.js";
import { readLease } from "../subnet.js";
import { findProblems } from "../wiring/inspect.js";
import type { CommandContext, CommandOutput } from "./context.js";
import { requireNetns, withPodAndHost } from "./netns.js";

export async function check({ invocation, config, deps }: CommandContext): Promise<CommandOutput> {
  const attachment = attachmentOf(invocation);
  const netns = requireNetns(invocation);
  if (config.prevResult === undefined)
    throw new CniError(
      CniCode.INVALID_CONFIG,
      "config field prevResult (missing) is invalid: CHECK needs the ADD result",
    );
  const previous = parsePrevResult(config.prevResult);
  const lease = readLease(deps, config.subnetFile);
  const address = podAddress(previous, attachment.ifname);
  if (address === undefined)
    throw new CniError(CniCode.CHECK_FAILED, `prevResult has no address for ${attachment.ifname}`);
  const problems: string[] = [];
  const ip = formatIpv4(address.ip);
  if (!isAssignable(lease, address.ip) || address.prefixLen !== lease.subnet.prefixLen) {
    problems.push(`address ${ip}/${address.prefixLen} is not in the node's subnet any more (the lease changed)`);
  }
  const reserved = await reservationsOf(deps.store(config.dataDir), attachment);
  if (!reserved.some((r) => r.ip === address.ip))
    problems.push(`address ${ip} is not reserved for ${attachment.containerId}/${attachment.ifname}`);

  const spec = podNetworkSpec(config, lease, attachment, netns, address.ip);
  for (const name of [spec.hostVeth, attachment.ifname]) {
    if (!previous.interfaces.some((i) => i.name === name)) problems.push(`prevResult does not list interface ${name}`);
  }
  problems.push(...(await withPodAndHost(deps, netns, (pod, host) => findProblems(host, pod, spec))));
  if (problems.length > 0) throw new CniError(CniCode.CHECK_FAILED, `CHECK failed: ${problems.join("; ")}`);
  return "";
}
