// CHECK: what ADD set up, compared with the kernel; every difference named (pure over what the kernel reports).
import type { Kernel } from "#lib/netlink/kernel.js";
import type { PodNetworkSpec } from "./pod-network.js";

export async function findProblems(host: Kernel, pod: Kernel, spec: PodNetworkSpec): Promise<string[]> {
  const problems: string[] = [];
  const bridge = await host.getLink(spec.bridge);
  if (bridge?.kind !== "bridge") {
    problems.push(`bridge ${spec.bridge} is missing`);
  } else {
    if (!bridge.up) problems.push(`bridge ${spec.bridge} is down`);
    for (const family of spec.addresses) {
      const addresses = await host.listAddresses(bridge.index, family.family);
      if (!addresses.some((a) => a.address === family.gateway && a.prefixLen === family.prefixLen)) {
        problems.push(`bridge ${spec.bridge} lacks the gateway address ${family.gateway}/${family.prefixLen}`);
      }
    }
  }
  const hostEnd = await host.getLink(spec.hostVeth);
  if (hostEnd?.kind !== "veth") {
    problems.push(`host veth ${spec.hostVeth} is missing`);
  } else {
    if (bridge !== undefined && hostEnd.masterIndex !== bridge.index)
      problems.push(`host veth ${spec.hostVeth} is not attached to ${spec.bridge}`);
    if (!hostEnd.up) problems.push(`host veth ${spec.hostVeth} is down`);
  }
  const podEnd = await pod.getLink(spec.ifname);
  if (podEnd === undefined) {
    problems.push(`interface ${spec.ifname} is missing in ${spec.netns}`);
    return problems;
  }
  if (!podEnd.up) problems.push(`interface ${spec.ifname} is down`);
  if (spec.mac !== undefined && podEnd.mac !== spec.mac)
    problems.push(`interface ${spec.ifname} has MAC ${podEnd.mac ?? "none"}, expected ${spec.mac}`);
  if (podEnd.mtu !== spec.mtu) problems.push(`interface ${spec.ifname} has MTU ${podEnd.mtu}, expected ${spec.mtu}`);
  for (const family of spec.addresses) {
    const addresses = await pod.listAddresses(podEnd.index, family.family);
    if (!addresses.some((a) => a.address === family.podIp && a.prefixLen === family.prefixLen)) {
      problems.push(`interface ${spec.ifname} lacks the address ${family.podIp}/${family.prefixLen}`);
    }
    const routes = await pod.listRoutes({ family: family.family });
    for (const want of family.routes) {
      const found = routes.some(
        (r) =>
          r.dst === want.dst &&
          r.prefixLen === want.prefixLen &&
          r.gateway === family.gateway &&
          r.oif === podEnd.index,
      );
      if (!found)
        problems.push(`route ${want.dst}/${want.prefixLen} via ${family.gateway} dev ${spec.ifname} is missing`);
    }
  }
  return problems;
}
