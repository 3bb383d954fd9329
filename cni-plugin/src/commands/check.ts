// CHECK: the reservations, the prevResult and the kernel must all agree with what ADD set up, for every IP family of
// the lease; every difference is named in one error (code 103).
import { formatIpv6 } from "#lib/ipv6.js";
import { CniCode, CniError } from "../cni-error.js";
import { attachmentOf } from "../env.js";
import { isCurrent, reservationsOf } from "../ipam/ipam.js";
import { formatAddress } from "../ipam/store.js";
import { podNetworkSpec } from "../pod-spec.js";
import { parsePrevResult, podAddresses } from "../result.js";
import { readLease } from "../subnet.js";
import { hostVethName } from "../wiring/host-veth-name.js";
import { findProblems } from "../wiring/inspect.js";
import { findHostVeth } from "../wiring/ownership.js";
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
  const addresses = podAddresses(previous, attachment.ifname);
  if (addresses.ipv4 === undefined && addresses.ipv6 === undefined)
    throw new CniError(CniCode.CHECK_FAILED, `prevResult has no address for ${attachment.ifname}`);
  const problems: string[] = [];
  const reserved = await reservationsOf(deps.store(config.dataDir), attachment);
  const podIp6 = addresses.ipv6 === undefined ? undefined : formatIpv6(addresses.ipv6.ip);
  const families = [
    { name: "IPv4", ip: addresses.ipv4?.ip, prefixLen: addresses.ipv4?.prefixLen, lease: lease.ipv4 },
    { name: "IPv6", ip: podIp6, prefixLen: addresses.ipv6?.prefixLen, lease: lease.ipv6 },
  ] as const;
  for (const { name, ip, prefixLen, lease: familyLease } of families) {
    if (ip === undefined) {
      if (familyLease !== undefined) problems.push(`prevResult has no ${name} address for ${attachment.ifname}`);
      continue;
    }
    const text = formatAddress(ip);
    if (!isCurrent(lease, ip) || prefixLen !== familyLease?.subnet.prefixLen)
      problems.push(`address ${text}/${prefixLen ?? 0} is not in the node's subnet any more (the lease changed)`);
    if (!reserved.some((r) => r.ip === ip))
      problems.push(`address ${text} is not reserved for ${attachment.containerId}/${attachment.ifname}`);
  }

  problems.push(
    ...(await withPodAndHost(deps, netns, async (pod, host) => {
      const existing = await findHostVeth(host, config.name, attachment, { kernel: pod, ifname: attachment.ifname });
      const podMac = previous.interfaces.find((i) => i.name === attachment.ifname && i.sandbox !== undefined)?.mac;
      const spec = podNetworkSpec(config, lease, attachment, {
        netns,
        podIps: { ipv4: addresses.ipv4?.ip, ipv6: podIp6 },
        hostVeth: existing?.name ?? hostVethName(attachment),
        mac: podMac,
      });
      const found: string[] = [];
      // Absent, findProblems says so; present under the name but not provably ours, it is someone else's.
      if (existing === undefined && (await host.getLink(spec.hostVeth)) !== undefined)
        found.push(`host veth ${spec.hostVeth} is not this attachment's`);
      for (const name of [spec.hostVeth, attachment.ifname]) {
        if (!previous.interfaces.some((i) => i.name === name)) found.push(`prevResult does not list interface ${name}`);
      }
      return [...found, ...(await findProblems(host, pod, spec))];
    })),
  );
  if (problems.length > 0) throw new CniError(CniCode.CHECK_FAILED, `CHECK failed: ${problems.join("; ")}`);
  return "";
}
