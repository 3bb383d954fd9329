// What the kernel has of ours, and the changes that turn it into the desired state. Pure.
import type {
  AddressInfo,
  FdbEntry,
  FdbSpec,
  LinkChanges,
  LinkInfo,
  NeighborInfo,
  NeighborSpec,
  RouteInfo,
  RouteSpec,
} from "../../../lib/src/netlink/kernel.js";
import type { DesiredDevice, DesiredState } from "./desired.js";

export interface ActualState {
  /** Routes carrying our protocol number, keyed by "dst/len". */
  readonly routes: ReadonlyMap<string, RouteInfo>;
  /** Neighbours on our device, keyed by IP. */
  readonly neighbors: ReadonlyMap<string, NeighborInfo>;
  /** FDB entries on our device, keyed by MAC. */
  readonly fdb: ReadonlyMap<string, FdbEntry>;
  /** Addresses on our device. */
  readonly deviceAddresses: readonly AddressInfo[];
}

/** The state a converged pass left behind, as if dumped: lets a peer change be applied without dumping again. */
export function assumedActual(desired: DesiredState, deviceIndex: number | undefined): ActualState {
  const address = desired.device?.address.split("/")[0];
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
    deviceAddresses:
      deviceIndex === undefined || address === undefined ? [] : [{ index: deviceIndex, address, prefixLen: 32 }],
  };
}

export type DeviceVerdict =
  | { readonly action: "keep" }
  | { readonly action: "create" }
  | { readonly action: "recreate"; readonly reason: string }
  | { readonly action: "update"; readonly changes: LinkChanges; readonly reason: string };

/** Whether the existing device (by name) is the one we want, can be adjusted in place, or must be made again. */
export function deviceVerdict(desired: DesiredDevice, actual: LinkInfo | undefined): DeviceVerdict {
  if (actual === undefined) return { action: "create" };
  const v = actual.vxlan;
  if (actual.kind !== "vxlan" || v === undefined)
    return { action: "recreate", reason: `${actual.name} is a ${actual.kind ?? "non-vxlan"} link` };
  const differences: string[] = [];
  if (v.vni !== desired.vni) differences.push(`VNI ${v.vni} → ${desired.vni}`);
  if (v.port !== desired.port) differences.push(`port ${v.port} → ${desired.port}`);
  if (v.local !== desired.local) differences.push(`local ${v.local ?? "none"} → ${desired.local}`);
  if (v.underlayIndex !== desired.underlayIndex)
    differences.push(`underlay ifindex ${v.underlayIndex ?? "none"} → ${desired.underlayIndex}`);
  if (v.learning) differences.push("learning on → off");
  if (differences.length > 0) return { action: "recreate", reason: differences.join(", ") };
  const changes: LinkChanges = {};
  const reasons: string[] = [];
  if (actual.mtu !== desired.mtu) {
    changes.mtu = desired.mtu;
    reasons.push(`mtu ${actual.mtu} → ${desired.mtu}`);
  }
  if (actual.mac !== desired.mac) {
    changes.mac = desired.mac;
    reasons.push(`mac ${actual.mac ?? "none"} → ${desired.mac}`);
  }
  if (!actual.up) {
    changes.up = true;
    reasons.push("down → up");
  }
  return reasons.length === 0 ? { action: "keep" } : { action: "update", changes, reason: reasons.join(", ") };
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
  const wantAddress = desired.device?.address;
  const addresses: Changes<AddressInfo, AddressInfo> =
    deviceIndex === undefined || wantAddress === undefined
      ? { put: [], remove: [] }
      : {
          put: actual.deviceAddresses.some((a) => `${a.address}/${a.prefixLen}` === wantAddress)
            ? []
            : [{ index: deviceIndex, address: wantAddress.split("/")[0] ?? "", prefixLen: 32 }],
          remove: actual.deviceAddresses.filter((a) => `${a.address}/${a.prefixLen}` !== wantAddress),
        };
  return {
    addresses,
    routes: diff(desired.routes, actual.routes, sameRoute),
    neighbors: diff(desired.neighbors, actual.neighbors, (want, have) => have.mac === want.mac && have.permanent),
    fdb: diff(desired.fdb, actual.fdb, (want, have) => have.dst === want.dst),
  };
}
