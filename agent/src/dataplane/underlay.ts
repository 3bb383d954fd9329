// The underlay: the interface inter-node traffic leaves by, as the kernel shows it now.
import { containsIp, parseCidr, parseIpv4 } from "#lib/ipv4.js";
import { containsIp6, parseCidr6, parseIpv6 } from "#lib/ipv6.js";

export interface UnderlayLink {
  readonly name: string;
  readonly index: number;
  readonly mtu: number;
  readonly localIp: string;
  /** The underlay's connected prefixes ("10.42.0.11/24"): peers inside them are directly reachable. */
  readonly addresses: readonly string[];
  /** The IPv6 address encapsulated IPv6 traffic leaves from; undefined: this node has no IPv6 underlay. */
  readonly localIp6?: string | undefined;
  /** The underlay's connected IPv6 prefixes ("fd00:42::11/64"), link-local ones left out. */
  readonly addresses6?: readonly string[] | undefined;
}

/** True when ip (IPv4, or IPv6) sits inside one of the underlay's connected prefixes of its family (no gateway needed). */
export function directlyReachable(underlay: UnderlayLink, ip: string): boolean {
  if (ip.includes(":")) {
    const target = parseIpv6(ip);
    if (target === undefined) return false;
    return (underlay.addresses6 ?? []).some((address) => {
      const cidr = parseCidr6(address);
      return cidr !== undefined && cidr.prefixLen < 128 && containsIp6(cidr, target);
    });
  }
  const target = parseIpv4(ip);
  if (target === undefined) return false;
  return underlay.addresses.some((address) => {
    const cidr = parseCidr(address);
    return cidr !== undefined && cidr.prefixLen < 32 && containsIp(cidr, target);
  });
}
