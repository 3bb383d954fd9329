// One dataplane pass over the Kernel port: make sure the backend's devices are right, compute the desired state of
// each plane (address family) the node runs, dump what the kernel has of ours, apply the difference. It remembers
// what it applied, so each change is reported as new work, a repair of drift, or the removal of something stale —
// and it judges which kernel events are drift. Which backend it programs it does not know: the Backend (backends/)
// says what each plane's device and each peer's entries are.
import { Emitter } from "#lib/emitter.js";
import { errorMessage, TrellisError } from "#lib/errors.js";
import { formatCidr } from "#lib/ipv4.js";
import { formatCidr6, isLinkLocal6 } from "#lib/ipv6.js";
import { isNetlinkErrno } from "#lib/netlink/errors.js";
import { familyOf, type IpFamily, type Kernel, type KernelEvent, type LinkInfo } from "#lib/netlink/kernel.js";
import type { Peer } from "../lease/peers.js";
import type { Backend, NodeContext, OwnLease, PlaneLayout } from "./backends/backend.js";
import { desiredPlanes, planeFamilies, type DesiredState, type SkippedPeer } from "./desired.js";
import { readActualState, readUnderlay } from "./kernel-state.js";
import { routeKey, TRELLIS_ROUTE_PROTOCOL } from "./marks.js";
import { assumedActual, planChanges, planSize, type Plan } from "./plan.js";
import type { PassOutcome, PassTrigger } from "./scheduler.js";
import type { UnderlayLink } from "./underlay.js";

/** A link with the device's name that is not of the device's kind: not ours, so never deleted or changed. */
export class ForeignLinkError extends TrellisError {
  constructor(
    readonly device: string,
    readonly kind: string,
    deviceKind = "vxlan",
    remedy = "remove it, or choose another name with --vxlan-device",
  ) {
    super(
      "CONFLICT",
      `a ${kind} link named ${device} exists, and it is not a ${deviceKind} device: trellis never deletes a link it did not create; ${remedy}`,
    );
  }
}

export type EntryKind = "device" | "address" | "route" | "neighbor" | "fdb";

export interface EntryRef {
  readonly kind: EntryKind;
  readonly key: string;
  /** The plane the entry belongs to. */
  readonly family: IpFamily;
  /** The peer the entry serves, when it serves one. */
  readonly subnet?: string;
  readonly publicIp?: string;
}

export type DataplaneEvent =
  | ({ readonly type: "programmed" | "repaired" | "removed" | "stale-removed" } & EntryRef)
  | {
      readonly type: "device";
      readonly action: "created" | "recreated" | "updated";
      readonly name: string;
      /** The plane whose device it is. */
      readonly family: IpFamily;
      readonly reason: string;
      readonly repair: boolean;
    }
  | { readonly type: "peer-skipped"; readonly peer: SkippedPeer }
  /** A kernel setting the IPv6 plane needs, set (forwarding on, router advertisements off on its device). */
  | { readonly type: "sysctl"; readonly name: string; readonly value: string; readonly previous: string }
  | {
      readonly type: "pass";
      readonly trigger: PassTrigger;
      readonly changes: number;
      readonly durationMs: number;
      readonly converged: boolean;
    }
  | { readonly type: "error"; readonly entry?: EntryRef; readonly error: unknown };

export interface PassOptions {
  readonly kernel: Kernel;
  readonly backend: Backend;
  readonly deviceName: string;
  /** The IPv6 plane's device (flannel-v6.<VNI>), for a lease with an IPv6 subnet. */
  readonly device6Name?: string | undefined;
  readonly underlayName: string;
  readonly localIp: string;
  /** The node's IPv6 underlay address; undefined: it has none (IPv6 pods are tunnelled over IPv4). */
  readonly localIp6?: string | undefined;
  /** False on an IPv6-only network: no IPv4 plane. Default true. */
  readonly enableIPv4?: boolean | undefined;
  readonly own: () => OwnLease | undefined;
  readonly peers: () => Iterable<Peer>;
}

/** What the pass remembers of one plane between passes. */
interface PlaneMemory {
  desired: DesiredState | undefined;
  /** The plane's own device, once made or found. */
  deviceIndex: number | undefined;
  /** The device holding the plane's entries (its own, or the one it shares). */
  holderIndex: number | undefined;
  deviceSeen: boolean;
  skipped: Map<string, string>;
}

/** The sysctl name of a per-device IPv6 setting ("." inside a name is written "/"). */
function ipv6Conf(device: string, setting: string): string {
  return `net.ipv6.conf.${device.replaceAll(".", "/")}.${setting}`;
}

const entryId = (family: IpFamily, kind: EntryKind, key: string): string => `${family}:${kind}:${key}`;

export class DataplanePass {
  readonly events = new Emitter<DataplaneEvent>();
  /** entryId of every entry known to be in the kernel after the last pass: a missing one is drift. */
  private readonly applied = new Set<string>();
  /** Entries whose last put failed: not in the kernel now, whatever `applied` remembers. */
  private readonly failing = new Set<string>();
  private readonly planes = new Map<IpFamily, PlaneMemory>();
  private lastUnderlay: UnderlayLink | undefined;
  private lastConverged = false;
  private lastError: unknown;
  private underlayIndex: number | undefined;
  /** Which peer each entry serves (entryId → peer), rebuilt each pass for the events it reports. */
  private peerIndex = new Map<string, { subnet: string; publicIp: string }>();

  constructor(private readonly options: PassOptions) {}

  /** True when the last pass left the kernel equal to the desired state. */
  get converged(): boolean {
    return this.lastConverged;
  }

  /** The first error of the last pass, while it did not converge. */
  get problem(): string | undefined {
    return this.lastConverged || this.lastError === undefined ? undefined : errorMessage(this.lastError);
  }

  /** Peer subnets (of every plane: "172.30.2.0/24", "fd30:0:0:2::/64") whose entries are all in the kernel. */
  programmedPeers(): ReadonlySet<string> {
    const programmed = new Set<string>();
    for (const [family, plane] of this.planes) {
      for (const route of plane.desired?.routes.values() ?? []) {
        const id = entryId(family, "route", routeKey(route));
        if (this.applied.has(id) && !this.failing.has(id)) programmed.add(`${route.dst}/${route.prefixLen}`);
      }
    }
    return programmed;
  }

  /**
   * Peers the plane of `family` does not serve, with why: keyed by the subnet of that family (IPv4-only peers in the
   * IPv6 plane by their IPv4 subnet).
   */
  skippedPeers(family: IpFamily = 4): ReadonlyMap<string, string> {
    return this.planes.get(family)?.skipped ?? new Map<string, string>();
  }

  private plane(family: IpFamily): PlaneMemory {
    let plane = this.planes.get(family);
    if (plane === undefined) {
      plane = {
        desired: undefined,
        deviceIndex: undefined,
        holderIndex: undefined,
        deviceSeen: false,
        skipped: new Map(),
      };
      this.planes.set(family, plane);
    }
    return plane;
  }

  /**
   * Whether a kernel event is drift of ours (or may have flushed ours) that a full pass should repair. Only events of
   * a plane the node runs count; for IPv6 only what that plane holds (its device's address, our routes, the NDP
   * entries it wants): the kernel makes and drops link-local addresses and NDP entries for multicast on its own.
   */
  relevant(event: KernelEvent, passRunning: boolean): boolean {
    switch (event.type) {
      case "overrun":
        return true;
      case "link":
        return this.linkRelevant(event.action, event.link, passRunning);
      case "address": {
        if (event.action !== "del") return false;
        const { index, address, prefixLen } = event.address;
        const family = familyOf(address);
        if (family === 6 && isLinkLocal6(address)) return false;
        if (index === this.underlayIndex) return family === 4 || this.planes.has(6);
        const plane = this.planes.get(family);
        if (plane === undefined || index !== plane.holderIndex) return false;
        return family === 4 || plane.desired?.address === `${address}/${prefixLen}`;
      }
      case "route":
        return (
          event.action === "del" &&
          event.route.protocol === TRELLIS_ROUTE_PROTOCOL &&
          (familyOf(event.route.dst) === 4 || this.planes.has(6))
        );
      case "neighbor": {
        if (event.action !== "del") return false;
        const family = familyOf(event.neighbor.ip);
        const plane = this.planes.get(family);
        if (plane === undefined || event.neighbor.index !== plane.holderIndex) return false;
        return family === 4 || plane.desired?.neighbors.has(event.neighbor.ip) === true;
      }
      case "fdb":
        return event.action === "del" && [...this.planes.values()].some((p) => p.holderIndex === event.fdb.index);
    }
  }

  /** A link event about the underlay or one of our devices (by name, or by the index it had). */
  private linkRelevant(action: "new" | "del", link: LinkInfo, passRunning: boolean): boolean {
    if (link.index === this.underlayIndex) return true; // up/down, MTU: routes may have been flushed
    const plane = [...this.planes.values()].find(
      (p) => p.desired?.device?.name === link.name || (p.deviceIndex !== undefined && p.deviceIndex === link.index),
    );
    if (plane === undefined && link.name !== this.options.deviceName) return false;
    if (action === "del") return true;
    // Our own creation and updates also arrive here: only a device that is not as the last pass wanted counts
    // (a pass in progress may be creating it, still down: that is not drift). Learning switched on, another
    // local address or MTU: repaired in place at once, not at the next periodic pass.
    const desired = plane?.desired?.device;
    const device = this.options.backend.device;
    if (desired === undefined || device === undefined || (passRunning && !link.up)) return false;
    return device.verdict(desired, link).action !== "keep";
  }

  /** One pass; never throws: the outcome says whether it converged, and why not. */
  async run(trigger: PassTrigger): Promise<PassOutcome> {
    const started = performance.now();
    const own = this.options.own();
    if (own === undefined) return { converged: false, error: undefined }; // nothing to do before we hold a lease
    let changes = 0;
    let failed: boolean;
    const failure: { error?: unknown } = {};
    try {
      const { kernel, backend } = this.options;
      const families = planeFamilies(own, this.options.enableIPv4 ?? true);
      for (const family of [...this.planes.keys()]) if (!families.includes(family)) this.planes.delete(family);
      const context = (underlay: UnderlayLink): NodeContext => ({
        deviceName: this.options.deviceName,
        device6Name: this.options.device6Name,
        underlay,
        own,
        families,
      });
      // A peer change after a converged pass needs no dump: what that pass left is known (the same lease, so the
      // same devices and addresses). Drift is caught by kernel events and the periodic pass, which always dump.
      const last = this.lastUnderlay;
      let layouts: PlaneLayout[] | undefined;
      if (trigger === "peers" && this.lastConverged && last !== undefined) {
        const candidate = families.map((family) => backend.plane(family, context(last)));
        const same = candidate.every((layout) => {
          const previous = this.planes.get(layout.family)?.desired;
          return previous !== undefined && previous.address === layout.address;
        });
        if (same) layouts = candidate;
      }
      const incremental = layouts !== undefined;
      const underlay: UnderlayLink =
        incremental && last !== undefined
          ? last
          : await readUnderlay(
              kernel,
              this.options.underlayName,
              this.options.localIp,
              families.includes(6) ? this.options.localIp6 : undefined,
            );
      this.underlayIndex = underlay.index;
      const node = context(underlay);
      layouts ??= families.map((family) => backend.plane(family, node));
      for (const layout of layouts) {
        const plane = this.plane(layout.family);
        if (layout.device === undefined) plane.deviceIndex = undefined;
        else if (!incremental) {
          const guests = layouts.filter((l) => l.sharesDeviceOf === layout.family).map((l) => l.family);
          plane.deviceIndex = (await this.ensureDevice(layout, plane, guests)).index;
        }
      }
      const holders = new Map<IpFamily, number | undefined>();
      for (const layout of layouts)
        holders.set(layout.family, this.plane(layout.sharesDeviceOf ?? layout.family).deviceIndex);
      for (const layout of layouts) this.plane(layout.family).holderIndex = holders.get(layout.family);
      if (!incremental && families.includes(6)) await this.ensureIpv6Settings(layouts);

      const peers = [...this.options.peers()];
      const desired = desiredPlanes(backend, node, layouts, peers, holders);
      this.reportSkipped(desired);
      const plans: { family: IpFamily; plan: Plan }[] = [];
      for (const [i, state] of desired.entries()) {
        const layout = layouts[i];
        const plane = this.plane(state.family);
        const index = plane.holderIndex;
        const previous = plane.desired;
        const actual =
          incremental && previous !== undefined
            ? assumedActual(previous, index)
            : await readActualState(kernel, index, state.family, layout?.sharesDeviceOf === undefined);
        plane.desired = state;
        plans.push({ family: state.family, plan: planChanges(state, actual, index) });
      }
      this.lastUnderlay = underlay;
      this.indexPeers(peers);
      changes = plans.reduce((n, p) => n + planSize(p.plan), 0);
      // What is already right counts as applied: its later disappearance is drift to repair.
      const pending = new Set(plans.flatMap((p) => plannedKeys(p.family, p.plan)));
      for (const state of desired) for (const key of desiredKeys(state)) if (!pending.has(key)) this.applied.add(key);
      failed = !(await this.apply(plans, failure));
    } catch (error) {
      failed = true;
      failure.error ??= error;
      // A lasting condition (someone else's link in our device's place) fails every retry: say it once.
      if (this.lastConverged || this.lastError === undefined || errorMessage(this.lastError) !== errorMessage(error))
        this.events.emit({ type: "error", error });
    }
    this.lastConverged = !failed;
    this.lastError = failure.error;
    this.events.emit({ type: "pass", trigger, changes, durationMs: performance.now() - started, converged: !failed });
    return { converged: !failed, error: failure.error };
  }

  private indexPeers(peers: readonly Peer[]): void {
    this.peerIndex = new Map();
    for (const peer of peers) {
      const subnet = formatCidr(peer.subnet);
      const ref = { subnet, publicIp: peer.attrs.publicIp };
      this.peerIndex.set(entryId(4, "route", subnet), ref);
      this.peerIndex.set(entryId(4, "neighbor", subnet.split("/")[0] ?? ""), ref);
      if (peer.attrs.vtepMac !== undefined) {
        this.peerIndex.set(entryId(4, "fdb", peer.attrs.vtepMac), ref);
        this.peerIndex.set(entryId(6, "fdb", peer.attrs.vtepMac), ref);
      }
      if (peer.subnet6 === undefined) continue;
      const subnet6 = formatCidr6(peer.subnet6);
      const ref6 = { subnet: subnet6, publicIp: peer.attrs.publicIpv6 ?? peer.attrs.publicIp };
      this.peerIndex.set(entryId(6, "route", subnet6), ref6);
      this.peerIndex.set(entryId(6, "neighbor", subnet6.split("/")[0] ?? ""), ref6);
      if (peer.attrs.v6?.vtepMac !== undefined) this.peerIndex.set(entryId(6, "fdb", peer.attrs.v6.vtepMac), ref6);
    }
  }

  private peerOf(id: string): { subnet?: string; publicIp?: string } {
    return this.peerIndex.get(id) ?? {};
  }

  /** Makes the plane's device right; `guests` are the planes whose entries hang on it too. */
  private async ensureDevice(layout: PlaneLayout, plane: PlaneMemory, guests: readonly IpFamily[]): Promise<LinkInfo> {
    const device = this.options.backend.device;
    const desired = layout.device;
    if (desired === undefined || device === undefined) throw new Error("a plane without a device has none to ensure");
    const { kernel } = this.options;
    const existing = await kernel.getLink(desired.name);
    const verdict = device.verdict(desired, existing);
    if (verdict.action === "keep" && existing !== undefined) {
      plane.deviceSeen = true;
      return existing;
    }
    if (verdict.action === "foreign")
      throw new ForeignLinkError(
        desired.name,
        verdict.kind,
        device.kind,
        desired.name === this.options.deviceName ? undefined : "remove it",
      );
    let recreate = verdict.action === "recreate" ? verdict.reason : undefined;
    if (verdict.action === "update" && existing !== undefined) {
      try {
        await kernel.setLink(existing.index, verdict.changes);
        this.events.emit({
          type: "device",
          action: "updated",
          name: desired.name,
          family: layout.family,
          reason: verdict.reason,
          repair: plane.deviceSeen,
        });
        plane.deviceSeen = true;
        const { vxlan, ...link } = verdict.changes;
        return {
          ...existing,
          ...link,
          ...(vxlan === undefined || existing.vxlan === undefined ? {} : { vxlan: { ...existing.vxlan, ...vxlan } }),
          up: true,
        };
      } catch (error) {
        // An older kernel that cannot change an attribute in place: make the device again.
        if (verdict.changes.vxlan === undefined || !isNetlinkErrno(error, "ENOTSUP", "EOPNOTSUPP")) throw error;
        recreate = `${verdict.reason} (not changeable in place here)`;
      }
    }
    if (recreate !== undefined && existing !== undefined) await kernel.deleteLink(existing.index);
    const created = await device.create(kernel, desired);
    await kernel.setLink(created.index, { up: true });
    const reason = recreate ?? (plane.deviceSeen ? "device was deleted" : "first start");
    this.events.emit({
      type: "device",
      action: recreate !== undefined ? "recreated" : "created",
      name: desired.name,
      family: layout.family,
      reason,
      repair: plane.deviceSeen,
    });
    plane.deviceSeen = true;
    // A new device has none of the old entries (of any plane on it): everything on it is programmed again.
    const planes = new Set([layout.family, ...guests].map(String));
    for (const entry of [...this.applied]) {
      const [family = "", kind] = entry.split(":");
      if (kind !== "route" && planes.has(family)) this.applied.delete(entry);
    }
    return created;
  }

  /**
   * What an IPv6 plane needs of the kernel: forwarding on, and on the device holding its entries IPv6 enabled and no
   * router advertisements accepted (no SLAAC address or default route on a tunnel).
   */
  private async ensureIpv6Settings(layouts: readonly PlaneLayout[]): Promise<void> {
    const layout6 = layouts.find((l) => l.family === 6);
    const holder = layouts.find((l) => l.family === (layout6?.sharesDeviceOf ?? 6))?.device?.name;
    const wanted: [string, string][] = [
      ["net.ipv6.conf.all.forwarding", "1"],
      ...(holder === undefined
        ? []
        : ([
            [ipv6Conf(holder, "disable_ipv6"), "0"],
            [ipv6Conf(holder, "accept_ra"), "0"],
          ] as [string, string][])),
    ];
    for (const [name, value] of wanted) {
      const previous = await this.options.kernel.getSysctl(name);
      if (previous === value) continue;
      await this.options.kernel.setSysctl(name, value);
      this.events.emit({ type: "sysctl", name, value, previous });
    }
  }

  private reportSkipped(desired: readonly DesiredState[]): void {
    for (const state of desired) {
      const plane = this.plane(state.family);
      const next = new Map<string, string>();
      for (const peer of state.skipped) {
        next.set(peer.subnet, peer.reason);
        if (plane.skipped.get(peer.subnet) !== peer.reason) this.events.emit({ type: "peer-skipped", peer });
      }
      plane.skipped = next;
    }
  }

  /**
   * Applies the planes' plans entry by entry; one failing entry does not stop the others. True when all succeeded.
   * Removals of what should not be there first (routes before the entries they use), then additions in the order
   * traffic needs them (FDB and ARP/NDP before the route), each step across every plane (a plane sharing another's
   * device uses that plane's FDB entries). Within one step the requests overlap on the socket.
   */
  private async apply(
    plans: readonly { family: IpFamily; plan: Plan }[],
    failure: { error?: unknown },
  ): Promise<boolean> {
    const { kernel } = this.options;
    let ok = true;
    const step = async (
      family: IpFamily,
      kind: EntryKind,
      key: string,
      put: boolean,
      action: () => Promise<void>,
    ): Promise<void> => {
      const id = entryId(family, kind, key);
      const entry: EntryRef = { kind, key, family, ...this.peerOf(id) };
      try {
        await action();
      } catch (error) {
        ok = false;
        failure.error ??= error;
        // A put that fails keeps its "was applied" mark: once it succeeds (e.g. the link is back) it is a repair.
        if (put) this.failing.add(id);
        else this.applied.delete(id);
        this.events.emit({ type: "error", entry, error });
        return;
      }
      this.failing.delete(id);
      if (put) {
        this.events.emit({ type: this.applied.has(id) ? "repaired" : "programmed", ...entry });
        this.applied.add(id);
      } else {
        this.events.emit({ type: this.applied.has(id) ? "removed" : "stale-removed", ...entry });
        this.applied.delete(id);
      }
    };
    const all = async <T>(
      pick: (plan: Plan) => readonly T[],
      each: (family: IpFamily, item: T) => Promise<void>,
    ): Promise<void> => {
      await Promise.all(plans.flatMap(({ family, plan }) => pick(plan).map((item) => each(family, item))));
    };
    await all(
      (p) => p.routes.remove,
      (f, r) =>
        step(f, "route", routeKey(r), false, () => kernel.deleteRoute({ ...r, protocol: TRELLIS_ROUTE_PROTOCOL })),
    );
    await all(
      (p) => p.neighbors.remove,
      (f, n) => step(f, "neighbor", n.ip, false, () => kernel.deleteNeighbor(n)),
    );
    await all(
      (p) => p.fdb.remove,
      (f, e) =>
        step(f, "fdb", e.mac, false, () =>
          kernel.deleteFdb({ index: e.index, mac: e.mac, ...(e.dst === undefined ? {} : { dst: e.dst }) }),
        ),
    );
    await all(
      (p) => p.addresses.remove,
      (f, a) => step(f, "address", `${a.address}/${a.prefixLen}`, false, () => kernel.deleteAddress(a)),
    );
    await all(
      (p) => p.addresses.put,
      (f, a) => step(f, "address", `${a.address}/${a.prefixLen}`, true, () => kernel.addAddress(a)),
    );
    await all(
      (p) => p.fdb.put,
      (f, e) => step(f, "fdb", e.mac, true, () => kernel.replaceFdb(e)),
    );
    await all(
      (p) => p.neighbors.put,
      (f, n) => step(f, "neighbor", n.ip, true, () => kernel.replaceNeighbor(n)),
    );
    await all(
      (p) => p.routes.put,
      (f, r) => step(f, "route", routeKey(r), true, () => kernel.replaceRoute(r)),
    );
    return ok;
  }
}

function desiredKeys(desired: DesiredState): string[] {
  const f = desired.family;
  return [
    ...(desired.address === undefined ? [] : [entryId(f, "address", desired.address)]),
    ...[...desired.routes.keys()].map((k) => entryId(f, "route", k)),
    ...[...desired.neighbors.keys()].map((k) => entryId(f, "neighbor", k)),
    ...[...desired.fdb.keys()].map((k) => entryId(f, "fdb", k)),
  ];
}

function plannedKeys(family: IpFamily, plan: Plan): string[] {
  return [
    ...plan.addresses.put.map((a) => entryId(family, "address", `${a.address}/${a.prefixLen}`)),
    ...plan.routes.put.map((r) => entryId(family, "route", routeKey(r))),
    ...plan.neighbors.put.map((n) => entryId(family, "neighbor", n.ip)),
    ...plan.fdb.put.map((f) => entryId(family, "fdb", f.mac)),
  ];
}

export function describeEntry(entry: EntryRef): string {
  const kind = entry.family === 6 && entry.kind !== "fdb" ? `IPv6 ${entry.kind}` : entry.kind;
  return `${kind} ${entry.key}${entry.subnet === undefined ? "" : ` (peer ${entry.subnet} at ${entry.publicIp ?? "?"})`}`;
}
