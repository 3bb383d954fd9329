// From the lease, the config and the attachment to the exact network a pod gets (pure): the one description that
// ADD programs, CHECK compares and the result reports. One address per IP family of the lease, IPv4 first.
import { containsIp, formatIpv4, parseIpv4 } from "#lib/ipv4.js";
import { containsIp6, formatIpv6, parseIpv6 } from "#lib/ipv6.js";
import { familyOf } from "#lib/netlink/kernel.js";
import { CniCode, CniError } from "./cni-error.js";
import type { PluginConfig } from "./config.js";
import type { Attachment } from "./env.js";
import type { CniResult } from "./result.js";
import type { NodeLease } from "./subnet.js";
import { hostVethMark } from "./wiring/host-veth-name.js";
import type { PodAddressSpec, PodNetworkSpec, WiredPod } from "./wiring/pod-network.js";

/** IPv6 needs links of at least this MTU (RFC 8200); the kernel turns IPv6 off on smaller ones. */
const IPV6_MIN_MTU = 1280;

export interface PodPlacement {
  /** CNI_NETNS as the runtime gave it. */
  readonly netns: string;
  /** The pod's address per family (as allocated, or as a prevResult says): IPv6 in RFC 5952 form. */
  readonly podIps: { readonly ipv4?: number | undefined; readonly ipv6?: string | undefined };
  /** The attachment's host end: its existing name, or a free candidate for a new one. */
  readonly hostVeth: string;
  readonly mac?: string | undefined;
}

export function podNetworkSpec(
  config: PluginConfig,
  lease: NodeLease,
  attachment: Attachment,
  placement: PodPlacement,
): PodNetworkSpec {
  const { netns, podIps } = placement;
  const addresses: PodAddressSpec[] = [];
  if (lease.ipv4 !== undefined && podIps.ipv4 !== undefined) {
    const { network, subnet, gateway } = lease.ipv4;
    addresses.push({
      family: 4,
      gateway: formatIpv4(gateway),
      prefixLen: subnet.prefixLen,
      podIp: formatIpv4(podIps.ipv4),
      routes: [
        config.isDefaultGateway
          ? { dst: "0.0.0.0", prefixLen: 0 }
          : { dst: formatIpv4(network.ip), prefixLen: network.prefixLen },
      ],
    });
  }
  const mtu = config.mtu ?? lease.mtu;
  if (lease.ipv6 !== undefined && podIps.ipv6 !== undefined) {
    const { network, subnet, gateway } = lease.ipv6;
    if (mtu < IPV6_MIN_MTU) {
      throw config.mtu === undefined
        ? new CniError(
            CniCode.SUBNET_ENV_INVALID,
            `FLANNEL_MTU ${mtu} is below ${IPV6_MIN_MTU}, the least IPv6 works with, and the lease has an IPv6 subnet`,
          )
        : new CniError(
            CniCode.INVALID_CONFIG,
            `config field mtu ${mtu} is invalid: at least ${IPV6_MIN_MTU} (IPv6's minimum) on a network with IPv6`,
          );
    }
    addresses.push({
      family: 6,
      gateway: formatIpv6(gateway),
      prefixLen: subnet.prefixLen,
      podIp: podIps.ipv6,
      routes: [
        config.isDefaultGateway
          ? { dst: "::", prefixLen: 0 }
          : { dst: formatIpv6(network.ip), prefixLen: network.prefixLen },
      ],
    });
  }
  return {
    bridge: config.bridge,
    bridgeMac: gatewayMac(lease),
    mtu,
    addresses,
    hostVeth: placement.hostVeth,
    mark: hostVethMark(config.name, attachment),
    ifname: attachment.ifname,
    netns,
    hairpin: config.hairpinMode,
    ...(placement.mac === undefined ? {} : { mac: placement.mac }),
  };
}

/**
 * "0a:58" + the IPv4 gateway's four bytes (or the IPv6 gateway's last four on an IPv6-only network), the convention
 * Kubernetes network plugins use for addresses they own.
 */
export function gatewayMac(lease: NodeLease): string {
  const gateway = lease.ipv4?.gateway ?? Number((lease.ipv6?.gateway ?? 0n) & 0xffffffffn);
  const bytes = [0x0a, 0x58, (gateway >>> 24) & 255, (gateway >>> 16) & 255, (gateway >>> 8) & 255, gateway & 255];
  return bytes.map((b) => b.toString(16).padStart(2, "0")).join(":");
}

/** A predicate for "this address belongs to the pod network" (stale bridge addresses of an older lease). */
export function inNetwork(lease: NodeLease): (ip: string) => boolean {
  return (ip) => {
    if (familyOf(ip) === 4) {
      const n = parseIpv4(ip);
      return n !== undefined && lease.ipv4 !== undefined && containsIp(lease.ipv4.network, n);
    }
    if (lease.ipv6 === undefined) return false;
    const n = parseIpv6(ip);
    return n !== undefined && containsIp6(lease.ipv6.network, n);
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
    ips: spec.addresses.map((a) => ({ address: `${a.podIp}/${a.prefixLen}`, gateway: a.gateway, interface: 2 })),
    routes: spec.addresses.flatMap((a) => a.routes.map((r) => ({ dst: `${r.dst}/${r.prefixLen}`, gw: a.gateway }))),
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
