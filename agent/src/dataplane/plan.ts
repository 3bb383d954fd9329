// What the kernel has of ours, and the changes that turn it into the desired state, one plane (address family) at a
// time. Pure.
import type {
  AddressInfo,
  FdbEntry,
  FdbSpec,
  NeighborInfo,
  NeighborSpec,
  RouteInfo,
  RouteSpec,
} from "#lib/netlink/kernel.js";
import type { DesiredState } from "./desired.js";

export interface ActualState {
  /** Routes of the plane's family carrying our protocol number, keyed by "dst/len". */
  readonly routes: ReadonlyMap<string, RouteInfo>;
  /** Neighbours of the plane's family on the device holding its entries, keyed by IP. */
  readonly neighbors: ReadonlyMap<string, NeighborInfo>;
  /** FDB entries on our device, keyed by MAC (none for a plane sharing another plane's device). */
  readonly fdb: ReadonlyMap<string, FdbEntry>;
  /** Addresses of the plane's family on the device holding its entries (IPv6 link-local ones left out). */
  readonly deviceAddresses: readonly AddressInfo[];
}

/** The state a converged pass left behind, as if dumped: lets a peer change be applied without dumping again. */
export function assumedActual(desired: DesiredState, deviceIndex: number | undefined): ActualState {
  const address = parseAddress(desired.address);
  return {
    routes: new Map(
      [...desired.routes].map(([key, r]) => [
        key,
        {
          dst: r.dst,
          prefixLen: r.prefixLen,
          ...(r.gateway === undefined ? {} : { gateway: r.gateway }),
          ...(r.oif === undefined ? {} : { oif: r.oif }),
          protocol: r.protocol ?? 0,
          table: 254,
          scope: "universe",
          type: "unicast",
          onlink: r.onlink ?? false,
          // IPv6 routes always have one: the kernel's default.
          ...(r.metric !== undefined ? { metric: r.metric } : desired.family === 6 ? { metric: 1024 } : {}),
        },
      ]),
    ),
    neighbors: new Map(
      [...desired.neighbors].map(([key, n]) => [
        key,
        { index: n.index, ip: n.ip, mac: n.mac, state: "permanent", permanent: true },
      ]),
    ),
    fdb: new Map(
      [...desired.fdb].map(([key, f]) => [
        key,
        { index: f.index, mac: f.mac, dst: f.dst, permanent: true, self: true },
      ]),
    ),
    deviceAddresses: deviceIndex === undefined || address === undefined ? [] : [{ index: deviceIndex, ...address }],
  };
}

/** "172.30.5.0/32" → its parts. */
function parseAddress(text: string | undefined): { address: string; prefixLen: number } | undefined {
  if (text === undefined) return undefined;
  const slash = text.lastIndexOf("/");
  return { address: text.slice(0, slash), prefixLen: Number(text.slice(slash + 1)) };
}

export interface Changes<Put, Existing> {
  readonly put: readonly Put[];
  readonly remove: readonly Existing[];
}

export interface Plan {
  readonly addresses: Changes<AddressInfo, AddressInfo>;
  readonly routes: Changes<RouteSpec, RouteInfo>;
  readonly neighbors: Changes<NeighborSpec, NeighborInfo>;
  readonly fdb: Changes<FdbSpec, FdbEntry>;
}

export function planSize(plan: Plan): number {
  return [plan.addresses, plan.routes, plan.neighbors, plan.fdb].reduce(
    (n, c) => n + c.put.length + c.remove.length,
    0,
  );
}

function sameRoute(want: RouteSpec, have: RouteInfo): boolean {
  return (
    want.prefixLen === have.prefixLen &&
    (want.gateway ?? undefined) === have.gateway &&
    (want.oif === undefined || want.oif === have.oif) &&
    (want.onlink ?? false) === have.onlink &&
    have.table === 254
  );
}

function diff<Put, Existing>(
  desired: ReadonlyMap<string, Put>,
  actual: ReadonlyMap<string, Existing>,
  same: (want: Put, have: Existing) => boolean,
): Changes<Put, Existing> {
  const put: Put[] = [];
  const remove: Existing[] = [];
  for (const [key, want] of desired) {
    const have = actual.get(key);
    if (have === undefined || !same(want, have)) put.push(want);
  }
  for (const [key, have] of actual) if (!desired.has(key)) remove.push(have);
  return { put, remove };
}

export function planChanges(desired: DesiredState, actual: ActualState, deviceIndex: number | undefined): Plan {
  const wantAddress = desired.address;
  const want = parseAddress(wantAddress);
  const addresses: Changes<AddressInfo, AddressInfo> =
    deviceIndex === undefined || want === undefined
      ? { put: [], remove: [] }
      : {
          put: actual.deviceAddresses.some((a) => `${a.address}/${a.prefixLen}` === wantAddress)
            ? []
            : [{ index: deviceIndex, ...want }],
          remove: actual.deviceAddresses.filter((a) => `${a.address}/${a.prefixLen}` !== wantAddress),
        };
  return {
    addresses,
    routes: diff(desired.routes, actual.routes, sameRoute),
    neighbors: diff(desired.neighbors, actual.neighbors, (want, have) => have.mac === want.mac && have.permanent),
    fdb: diff(desired.fdb, actual.fdb, (want, have) => have.dst === want.dst),
  };
}
