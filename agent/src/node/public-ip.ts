// Which interface carries overlay traffic and which IP peers use to reach us — flannel's rules, with errors that
// say what to do. Pure over a HostNetwork snapshot.
import { InvalidArgumentError, TrellisError } from "#lib/errors.js";
import { containsIp, isIpv4, parseIpv4 } from "#lib/ipv4.js";
import { formatIpv6, isRoutableUnicast6, parseIpv6 } from "#lib/ipv6.js";
import type { HostInterface } from "./host-network.js";

export interface Underlay {
  readonly iface: HostInterface;
  /** The address on iface that encapsulated traffic leaves from (VXLAN local). */
  readonly localIp: string;
  /** What peers use to reach us; equals localIp unless --public-ip names another (NATed) address. */
  readonly publicIp: string;
}

export interface UnderlayRequest {
  /** --iface: an interface name or one of its IPv4 addresses. */
  readonly iface?: string | undefined;
  /** --public-ip */
  readonly publicIp?: string | undefined;
  /** --public-ipv6: the IPv6 address peers reach this node by (an IPv6 pod network only). */
  readonly publicIpv6?: string | undefined;
}

/** The node's IPv6 underlay, on the interface chooseUnderlay picked (an IPv6 pod network only). */
export interface Underlay6 {
  /** The IPv6 address on the interface that encapsulated IPv6 traffic leaves from (the IPv6 VXLAN device's local). */
  readonly localIp6: string;
  /** What peers use to reach us over IPv6 (the lease's PublicIPv6); localIp6 unless --public-ipv6 names another. */
  readonly publicIpv6: string;
}

export const PUBLIC_IPV6_RULE =
  "must be a global IPv6 address other nodes can reach (not ::1, link-local or multicast)";

const LOOPBACK = { ip: 0x7f000000, prefixLen: 8 };

function isLoopback(ip: string): boolean {
  const value = parseIpv4(ip);
  return value !== undefined && containsIp(LOOPBACK, value);
}

function describe(interfaces: readonly HostInterface[]): string {
  const usable = interfaces
    .filter((i) => i.name !== "lo")
    .map((i) => `${i.name} (${i.addresses.join(", ") || "no IPv4"})`);
  return usable.length === 0 ? "none besides lo" : usable.join(", ");
}

export function chooseUnderlay(
  request: UnderlayRequest,
  interfaces: readonly HostInterface[],
  defaultRouteIface: string | undefined,
): Underlay {
  if (request.publicIp !== undefined && (!isIpv4(request.publicIp) || isLoopback(request.publicIp))) {
    throw new InvalidArgumentError(
      "--public-ip",
      request.publicIp,
      "must be an IPv4 address other nodes can reach (not loopback)",
    );
  }
  let iface: HostInterface | undefined;
  if (request.iface !== undefined) {
    const wanted = request.iface;
    iface = isIpv4(wanted)
      ? interfaces.find((i) => i.addresses.includes(wanted))
      : interfaces.find((i) => i.name === wanted);
    if (iface === undefined) {
      throw new InvalidArgumentError(
        "--iface",
        wanted,
        `must name an interface or one of its IPv4 addresses; this node has: ${describe(interfaces)}`,
      );
    }
    const localIp = isIpv4(wanted) ? wanted : iface.addresses[0];
    if (localIp === undefined)
      throw new InvalidArgumentError("--iface", wanted, `must have an IPv4 address; ${iface.name} has none`);
    if (isLoopback(localIp))
      throw new InvalidArgumentError(
        "--iface",
        wanted,
        "is a loopback interface, which cannot carry traffic between nodes",
      );
    return { iface, localIp, publicIp: request.publicIp ?? localIp };
  }
  if (request.publicIp !== undefined) {
    const wanted = request.publicIp;
    iface = interfaces.find((i) => i.addresses.includes(wanted));
    if (iface === undefined) {
      throw new InvalidArgumentError(
        "--public-ip",
        wanted,
        `is not on any interface of this node (${describe(interfaces)}); for a NATed address also give --iface`,
      );
    }
    return { iface, localIp: wanted, publicIp: wanted };
  }
  iface = interfaces.find((i) => i.name === defaultRouteIface);
  if (iface === undefined) {
    throw new TrellisError(
      "NOT_FOUND",
      `this node has no IPv4 default route to pick the underlay interface from; give --iface (interfaces: ${describe(interfaces)})`,
    );
  }
  const localIp = iface.addresses[0];
  if (localIp === undefined)
    throw new TrellisError("NOT_FOUND", `default-route interface ${iface.name} has no IPv4 address; give --iface`);
  return { iface, localIp, publicIp: localIp };
}

/**
 * The IPv6 underlay on the chosen interface: --public-ipv6 when it is one of the interface's addresses, else the
 * interface's first global (not link-local) IPv6 address — with --public-ipv6 as what peers use when it is not on
 * the interface (NAT66). Undefined when the interface has no global IPv6 address and none was asked for.
 */
export function chooseUnderlay6(request: UnderlayRequest, iface: HostInterface): Underlay6 | undefined {
  const addresses = iface.addresses6 ?? [];
  const local = addresses[0];
  const wanted = request.publicIpv6;
  if (wanted === undefined) return local === undefined ? undefined : { localIp6: local, publicIpv6: local };
  const ip = parseIpv6(wanted);
  if (ip === undefined || !isRoutableUnicast6(wanted))
    throw new InvalidArgumentError("--public-ipv6", wanted, PUBLIC_IPV6_RULE);
  const publicIpv6 = formatIpv6(ip);
  if (addresses.includes(publicIpv6)) return { localIp6: publicIpv6, publicIpv6 };
  if (local === undefined)
    throw new InvalidArgumentError(
      "--public-ipv6",
      wanted,
      `is not on ${iface.name}, which has no global IPv6 address to send from; add one to ${iface.name}, or choose another --iface`,
    );
  return { localIp6: local, publicIpv6 };
}

/**
 * The error for an IPv6 pod network whose backend needs an IPv6 underlay (host-gw) on an interface without one: as
 * for a missing IPv4 address, a usage error naming --iface when it was given, else "not found".
 */
export function missingUnderlay6(request: UnderlayRequest, iface: HostInterface, backendType: string): TrellisError {
  const why = `the ${backendType} backend routes the IPv6 pod network over the underlay's IPv6 addresses`;
  return request.iface !== undefined
    ? new InvalidArgumentError(
        "--iface",
        request.iface,
        `must have a global IPv6 address: ${why}; ${iface.name} has none (add one, or give --public-ipv6 with one on it)`,
      )
    : new TrellisError(
        "NOT_FOUND",
        `underlay interface ${iface.name} has no global IPv6 address, and ${why}; add one, or give --iface (and --public-ipv6)`,
      );
}
