// From the lease, the config and the attachment to the exact network a pod gets (pure): the one description that
// ADD programs, CHECK compares and the result reports.
import { containsIp, formatCidr, formatIpv4, parseIpv4 } from "../../lib/src/ipv4.js";
import type { PluginConfig } from "./config.js";
import type { Attachment } from "./env.js";
import type { CniResult } from "./result.js";
import type { NodeLease } from "./subnet.js";
import { hostVethName } from "./wiring/host-veth-name.js";
import type { PodNetworkSpec, WiredPod } from "./wiring/pod-network.js";

export function podNetworkSpec(
  config: PluginConfig,
  lease: NodeLease,
  attachment: Attachment,
  netns: string,
  podIp: number,
): PodNetworkSpec {
  const route = config.isDefaultGateway
    ? { dst: "0.0.0.0", prefixLen: 0 }
    : { dst: formatIpv4(lease.network.ip), prefixLen: lease.network.prefixLen };
  return {
    bridge: config.bridge,
    bridgeMac: gatewayMac(lease.gateway),
    mtu: config.mtu ?? lease.mtu,
    gateway: formatIpv4(lease.gateway),
    prefixLen: lease.subnet.prefixLen,
    podIp: formatIpv4(podIp),
    hostVeth: hostVethName(attachment),
    ifname: attachment.ifname,
    netns,
    hairpin: config.hairpinMode,
    routes: [route],
  };
}

/** "0a:58" + the gateway's four bytes, the convention Kubernetes network plugins use for addresses they own. */
export function gatewayMac(gateway: number): string {
  const bytes = [0x0a, 0x58, (gateway >>> 24) & 255, (gateway >>> 16) & 255, (gateway >>> 8) & 255, gateway & 255];
  return bytes.map((b) => b.toString(16).padStart(2, "0")).join(":");
}

/** A predicate for "this address belongs to the pod network" (stale bridge addresses of an older lease). */
export function inNetwork(lease: NodeLease): (ip: string) => boolean {
  return (ip) => {
    const n = parseIpv4(ip);
    return n !== undefined && containsIp(lease.network, n);
  };
}

export function addResult(spec: PodNetworkSpec, wired: WiredPod, dns: CniResult["dns"]): CniResult {
  const iface = (name: string, mac: string | undefined, sandbox?: string): CniResult["interfaces"][number] => {
    const out: CniResult["interfaces"][number] = { name, mtu: spec.mtu };
    if (mac !== undefined) out.mac = mac;
    if (sandbox !== undefined) out.sandbox = sandbox;
    return out;
  };
  return {
    interfaces: [
      iface(spec.bridge, wired.bridge.mac),
      iface(spec.hostVeth, wired.host.mac),
      iface(spec.ifname, wired.pod.mac, spec.netns),
    ],
    ips: [{ address: `${spec.podIp}/${spec.prefixLen}`, gateway: spec.gateway, interface: 2 }],
    routes: spec.routes.map((r) => ({
      dst: formatCidr({ ip: parseIpv4(r.dst) ?? 0, prefixLen: r.prefixLen }),
      gw: spec.gateway,
    })),
    dns,
  };
}

/** Chained after another plugin: ours are appended, with interface indexes shifted. */
export function mergeResults(previous: CniResult, ours: CniResult): CniResult {
  const offset = previous.interfaces.length;
  return {
    interfaces: [...previous.interfaces, ...ours.interfaces],
    ips: [
      ...previous.ips,
      ...ours.ips.map((ip) => (ip.interface === undefined ? ip : { ...ip, interface: ip.interface + offset })),
    ],
    routes: [...previous.routes, ...ours.routes],
    dns: Object.keys(ours.dns).length > 0 ? ours.dns : previous.dns,
  };
}
