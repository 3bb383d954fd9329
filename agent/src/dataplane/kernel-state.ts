// Reading what the kernel has of ours, one plane (address family) at a time: routes of that family with our protocol
// number, and that family's entries on the device holding the plane's entries. What the kernel makes on its own for
// IPv6 (link-local addresses, NDP entries for multicast and link-local neighbours) is not ours and never listed.
import { isLinkLocal6, isRoutableUnicast6 } from "#lib/ipv6.js";
import type { IpFamily, Kernel, NeighborInfo } from "#lib/netlink/kernel.js";
import { routeKey, TRELLIS_ROUTE_PROTOCOL } from "./marks.js";
import type { UnderlayLink } from "./underlay.js";
import type { ActualState } from "./plan.js";

/** An NDP entry the kernel keeps for itself (multicast, link-local, "noarp"): never ours. */
export function kernelOwnNeighbor6(neighbor: NeighborInfo): boolean {
  return neighbor.state === "noarp" || !isRoutableUnicast6(neighbor.ip);
}

export async function readActualState(
  kernel: Kernel,
  deviceIndex: number | undefined,
  family: IpFamily = 4,
  ownsFdb = true,
): Promise<ActualState> {
  const routes = await kernel.listRoutes({ protocol: TRELLIS_ROUTE_PROTOCOL, family });
  if (deviceIndex === undefined) {
    return {
      routes: new Map(routes.map((r) => [routeKey(r), r])),
      neighbors: new Map(),
      fdb: new Map(),
      deviceAddresses: [],
    };
  }
  const [neighbors, fdb, addresses] = await Promise.all([
    kernel.listNeighbors(deviceIndex, family),
    ownsFdb ? kernel.listFdb(deviceIndex) : Promise.resolve([]),
    kernel.listAddresses(deviceIndex, family),
  ]);
  return {
    routes: new Map(routes.map((r) => [routeKey(r), r])),
    neighbors: new Map(
      neighbors
        .filter((n) => n.index === deviceIndex && (family === 4 || !kernelOwnNeighbor6(n)))
        .map((n) => [n.ip, n]),
    ),
    // Only unicast entries with a destination are ours to manage (the kernel adds none of its own on vxlan).
    fdb: new Map(fdb.filter((f) => f.index === deviceIndex && f.self && f.dst !== undefined).map((f) => [f.mac, f])),
    deviceAddresses: addresses.filter((a) => a.index === deviceIndex && (family === 4 || !isLinkLocal6(a.address))),
  };
}

/** The underlay as it is now: index, MTU and connected prefixes (of both families) of the named interface. */
export async function readUnderlay(
  kernel: Kernel,
  name: string,
  localIp: string,
  localIp6?: string,
): Promise<UnderlayLink> {
  const link = await kernel.getLink(name);
  if (link === undefined) throw new Error(`underlay interface ${name} is gone`);
  const [addresses, addresses6] = await Promise.all([
    kernel.listAddresses(link.index),
    localIp6 === undefined ? Promise.resolve([]) : kernel.listAddresses(link.index, 6),
  ]);
  const on = (a: { index: number }): boolean => a.index === link.index;
  return {
    name,
    index: link.index,
    mtu: link.mtu,
    localIp,
    addresses: addresses.filter(on).map((a) => `${a.address}/${a.prefixLen}`),
    ...(localIp6 === undefined
      ? {}
      : {
          localIp6,
          addresses6: addresses6
            .filter((a) => on(a) && !isLinkLocal6(a.address))
            .map((a) => `${a.address}/${a.prefixLen}`),
        }),
  };
}
