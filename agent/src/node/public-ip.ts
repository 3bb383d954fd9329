// Which interface carries overlay traffic and which IP peers use to reach us — flannel's rules, with errors that
// say what to do. Pure over a HostNetwork snapshot.
import { InvalidArgumentError, TrellisError } from "../../../lib/src/errors.js";
import { containsIp, isIpv4, parseIpv4 } from "../../../lib/src/ipv4.js";
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
}

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
