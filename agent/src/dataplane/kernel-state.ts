// Reading what the kernel has of ours: routes with our protocol number, and everything on our device.
import type { Kernel } from "../../../lib/src/netlink/kernel.js";
import { routeKey, TRELLIS_ROUTE_PROTOCOL, type UnderlayLink } from "./desired.js";
import type { ActualState } from "./plan.js";

export async function readActualState(kernel: Kernel, deviceIndex: number | undefined): Promise<ActualState> {
  const routes = await kernel.listRoutes({ protocol: TRELLIS_ROUTE_PROTOCOL });
  if (deviceIndex === undefined) {
    return {
      routes: new Map(routes.map((r) => [routeKey(r), r])),
      neighbors: new Map(),
      fdb: new Map(),
      deviceAddresses: [],
    };
  }
  const [neighbors, fdb, addresses] = await Promise.all([
    kernel.listNeighbors(deviceIndex),
    kernel.listFdb(deviceIndex),
    kernel.listAddresses(deviceIndex),
  ]);
  return {
    routes: new Map(routes.map((r) => [routeKey(r), r])),
    neighbors: new Map(neighbors.filter((n) => n.index === deviceIndex).map((n) => [n.ip, n])),
    // Only unicast entries with a destination are ours to manage (the kernel adds none of its own on vxlan).
    fdb: new Map(fdb.filter((f) => f.index === deviceIndex && f.self && f.dst !== undefined).map((f) => [f.mac, f])),
    deviceAddresses: addresses.filter((a) => a.index === deviceIndex),
  };
}

/** The underlay as it is now: index, MTU and connected prefixes of the named interface. */
export async function readUnderlay(kernel: Kernel, name: string, localIp: string): Promise<UnderlayLink> {
  const link = await kernel.getLink(name);
  if (link === undefined) throw new Error(`underlay interface ${name} is gone`);
  const addresses = await kernel.listAddresses(link.index);
  return {
    name,
    index: link.index,
    mtu: link.mtu,
    localIp,
    addresses: addresses.filter((a) => a.index === link.index).map((a) => `${a.address}/${a.prefixLen}`),
  };
}
