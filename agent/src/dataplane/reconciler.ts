// The reconciler keeps the kernel equal to the desired state. A pass: make sure the device is right, compute the
// desired state, dump what the kernel has of ours, apply the difference. Passes run when peers change, when the
// kernel reports that something of ours was deleted or changed (repair within one debounce interval), and
// periodically as a safety net. Each change is reported as an event that says whether it was new work, a repair
// of drift, or the removal of something stale.
import { Emitter } from "../../../lib/src/emitter.js";
import { formatCidr } from "../../../lib/src/ipv4.js";
import type { Kernel, KernelEvent, LinkInfo } from "../../../lib/src/netlink/kernel.js";
import type { BackendConfig } from "../config/network-config.js";
import type { Peer } from "../lease/peers.js";
import {
  desiredState,
  routeKey,
  TRELLIS_ROUTE_PROTOCOL,
  type DesiredState,
  type OwnLease,
  type SkippedPeer,
  type UnderlayLink,
} from "./desired.js";
import { readActualState, readUnderlay } from "./kernel-state.js";
import { assumedActual, deviceVerdict, planChanges, planSize, type Plan } from "./plan.js";

/** Kernel events are coalesced for this long before a pass: a burst of deletions is one repair. */
export const REPAIR_DEBOUNCE_MS = 5;
/** After a failed pass, try again this soon. */
export const RETRY_AFTER_ERROR_MS = 1000;
export const DEFAULT_RESYNC_INTERVAL_MS = 10_000;

export interface PassOutcome {
  readonly converged: boolean;
  /** The first error of a pass that did not converge. */
  readonly error: unknown;
}

export type EntryKind = "device" | "address" | "route" | "neighbor" | "fdb";
export type PassTrigger = "start" | "peers" | "lease" | "kernel" | "periodic" | "retry";

export interface EntryRef {
  readonly kind: EntryKind;
  readonly key: string;
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
      readonly reason: string;
      readonly repair: boolean;
    }
  | { readonly type: "peer-skipped"; readonly peer: SkippedPeer }
  | {
      readonly type: "pass";
      readonly trigger: PassTrigger;
      readonly changes: number;
      readonly durationMs: number;
      readonly converged: boolean;
    }
  | { readonly type: "error"; readonly entry?: EntryRef; readonly error: unknown };

export interface ReconcilerOptions {
  readonly kernel: Kernel;
  readonly backend: BackendConfig;
  readonly deviceName: string;
  readonly underlayName: string;
  readonly localIp: string;
  readonly own: () => OwnLease | undefined;
  readonly peers: () => Iterable<Peer>;
  readonly resyncIntervalMs?: number;
}

export class Reconciler {
  readonly events = new Emitter<DataplaneEvent>();
  /** "kind:key" of every entry known to be in the kernel after the last pass: a missing one is drift. */
  private applied = new Set<string>();
  /** Entries whose last put failed: not in the kernel now, whatever `applied` remembers. */
  private readonly failing = new Set<string>();
  private deviceSeen = false;
  private skipped = new Map<string, string>();
  private running: Promise<void> | undefined;
  /** The pass asked for while one runs or waits for its debounce; a full trigger wins over "peers". */
  private pending: PassTrigger | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastUnderlay: UnderlayLink | undefined;
  private lastConverged = false;
  private lastDesired: DesiredState | undefined;
  private stopped = false;

  constructor(private readonly options: ReconcilerOptions) {}

  /** True when the last pass left the kernel equal to the desired state. */
  get converged(): boolean {
    return this.lastConverged;
  }

  /** Peer subnets whose entries are all in the kernel after the last pass. */
  programmedPeers(): ReadonlySet<string> {
    const programmed = new Set<string>();
    const desired = this.lastDesired;
    if (desired === undefined) return programmed;
    for (const route of desired.routes.values()) {
      const id = `route:${routeKey(route)}`;
      if (this.applied.has(id) && !this.failing.has(id)) programmed.add(`${route.dst}/${route.prefixLen}`);
    }
    return programmed;
  }

  skippedPeers(): ReadonlyMap<string, string> {
    return this.skipped;
  }

  /** Asks for a pass soon; many requests while one is pending or running become one more pass. */
  schedule(trigger: PassTrigger, delayMs = REPAIR_DEBOUNCE_MS): void {
    if (this.stopped) return;
    this.pending = this.pending === undefined || this.pending === "peers" ? trigger : this.pending;
    if (this.running !== undefined || this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const next = this.pending;
      this.pending = undefined;
      if (next !== undefined) void this.pass(next);
    }, delayMs);
  }

  /** Runs a pass now (waiting for one in progress first); resolves with its outcome. */
  async pass(trigger: PassTrigger): Promise<PassOutcome> {
    while (this.running !== undefined) await this.running;
    // This pass reads the latest state, so it satisfies every request made before it started — but a "peers"
    // pass does not dump the kernel, so a pending full pass stays pending.
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const waiting = this.pending;
    this.pending = undefined;
    const effective = waiting !== undefined && waiting !== "peers" && trigger === "peers" ? waiting : trigger;
    const work = this.runPass(effective);
    const done = work
      .then(() => undefined)
      .finally(() => {
        this.running = undefined;
        const again = this.pending;
        this.pending = undefined;
        if (again !== undefined) this.schedule(again, 0);
        else if (!this.lastConverged) this.schedule("retry", RETRY_AFTER_ERROR_MS);
      });
    this.running = done;
    await done;
    return work;
  }

  /** Subscribes to kernel events and runs the periodic pass until the signal aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const subscription = this.options.kernel.watch((event) => {
      if (this.relevant(event)) this.schedule("kernel");
    });
    const periodic = setInterval(() => {
      this.schedule("periodic");
    }, this.options.resyncIntervalMs ?? DEFAULT_RESYNC_INTERVAL_MS);
    try {
      await new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        signal.addEventListener(
          "abort",
          () => {
            resolve();
          },
          { once: true },
        );
      });
    } finally {
      this.stopped = true;
      clearInterval(periodic);
      if (this.timer !== undefined) clearTimeout(this.timer);
      subscription.close();
      await this.running;
    }
  }

  private deviceIndex: number | undefined;
  private deviceMtu: number | undefined;
  private underlayIndex: number | undefined;

  private relevant(event: KernelEvent): boolean {
    switch (event.type) {
      case "overrun":
        return true;
      case "link": {
        const link = event.link;
        if (link.index === this.underlayIndex) return true; // up/down, MTU: routes may have been flushed
        if (link.name !== this.options.deviceName && link.index !== this.deviceIndex) return false;
        // Our own creation and updates also arrive here: only a deletion or a device that is not as we left it counts
        // (a pass in progress may be creating it, still down: that is not drift).
        if (event.action === "del") return true;
        return (
          (!link.up && this.running === undefined) || (this.deviceMtu !== undefined && link.mtu !== this.deviceMtu)
        );
      }
      case "address":
        return (
          event.action === "del" &&
          (event.address.index === this.deviceIndex || event.address.index === this.underlayIndex)
        );
      case "route":
        return event.action === "del" && event.route.protocol === TRELLIS_ROUTE_PROTOCOL;
      case "neighbor":
        return event.action === "del" && event.neighbor.index === this.deviceIndex;
      case "fdb":
        return event.action === "del" && event.fdb.index === this.deviceIndex;
    }
  }

  /** Which peer each entry serves ("kind:key" → peer), rebuilt each pass for the events it reports. */
  private peerIndex = new Map<string, { subnet: string; publicIp: string }>();

  private indexPeers(): void {
    this.peerIndex = new Map();
    for (const peer of this.options.peers()) {
      const subnet = formatCidr(peer.subnet);
      const ref = { subnet, publicIp: peer.attrs.publicIp };
      this.peerIndex.set(`route:${subnet}`, ref);
      this.peerIndex.set(`neighbor:${subnet.split("/")[0] ?? ""}`, ref);
      if (peer.attrs.vtepMac !== undefined) this.peerIndex.set(`fdb:${peer.attrs.vtepMac}`, ref);
    }
  }

  private peerOf(kind: EntryKind, key: string): { subnet?: string; publicIp?: string } {
    return this.peerIndex.get(`${kind}:${key}`) ?? {};
  }

  private async ensureDevice(desired: DesiredState["device"]): Promise<LinkInfo | undefined> {
    if (desired === undefined) return undefined;
    const { kernel } = this.options;
    const existing = await kernel.getLink(desired.name);
    const verdict = deviceVerdict(desired, existing);
    if (verdict.action === "keep" && existing !== undefined) {
      this.deviceSeen = true;
      return existing;
    }
    if (verdict.action === "update" && existing !== undefined) {
      await kernel.setLink(existing.index, verdict.changes);
      this.events.emit({
        type: "device",
        action: "updated",
        name: desired.name,
        reason: verdict.reason,
        repair: this.deviceSeen,
      });
      this.deviceSeen = true;
      return { ...existing, ...verdict.changes, up: true };
    }
    if (verdict.action === "recreate" && existing !== undefined) await kernel.deleteLink(existing.index);
    const created = await kernel.createVxlan({
      name: desired.name,
      vni: desired.vni,
      port: desired.port,
      local: desired.local,
      underlayIndex: desired.underlayIndex,
      learning: false,
      mtu: desired.mtu,
      mac: desired.mac,
    });
    await kernel.setLink(created.index, { up: true });
    const reason =
      verdict.action === "recreate" ? verdict.reason : this.deviceSeen ? "device was deleted" : "first start";
    this.events.emit({
      type: "device",
      action: verdict.action === "recreate" ? "recreated" : "created",
      name: desired.name,
      reason,
      repair: this.deviceSeen,
    });
    this.deviceSeen = true;
    // A new device has none of the old entries: everything on it is programmed again.
    for (const entry of [...this.applied]) if (!entry.startsWith("route:")) this.applied.delete(entry);
    return created;
  }

  private reportSkipped(skipped: readonly SkippedPeer[]): void {
    const next = new Map<string, string>();
    for (const peer of skipped) {
      const key = formatCidr(peer.subnet);
      next.set(key, peer.reason);
      if (this.skipped.get(key) !== peer.reason) this.events.emit({ type: "peer-skipped", peer });
    }
    this.skipped = next;
  }

  private async runPass(trigger: PassTrigger): Promise<PassOutcome> {
    const started = performance.now();
    const own = this.options.own();
    if (own === undefined) return { converged: false, error: undefined }; // nothing to do before we hold a lease
    let changes = 0;
    let failed: boolean;
    const failure: { error?: unknown } = {};
    try {
      const { kernel, backend } = this.options;
      // A peer change after a converged pass needs no dump: what that pass left is known. Drift is caught by kernel
      // events and the periodic pass, which always dump.
      const previous = this.lastDesired;
      const incremental =
        trigger === "peers" &&
        this.lastConverged &&
        previous !== undefined &&
        this.lastUnderlay !== undefined &&
        sameOwn(previous, own);
      const underlay: UnderlayLink =
        incremental && this.lastUnderlay !== undefined
          ? this.lastUnderlay
          : await readUnderlay(kernel, this.options.underlayName, this.options.localIp);
      this.underlayIndex = underlay.index;
      const input = { backend, deviceName: this.options.deviceName, underlay, own, peers: this.options.peers() };
      const deviceSpec = desiredState({ ...input, deviceIndex: undefined }).device;
      const deviceIndex = incremental ? this.deviceIndex : (await this.ensureDevice(deviceSpec))?.index;
      this.deviceIndex = deviceIndex;
      this.deviceMtu = deviceSpec?.mtu;
      const desired = desiredState({ ...input, peers: this.options.peers(), deviceIndex });
      this.reportSkipped(desired.skipped);
      const actual = incremental ? assumedActual(previous, deviceIndex) : await readActualState(kernel, deviceIndex);
      this.lastDesired = desired;
      this.lastUnderlay = underlay;
      const plan = planChanges(desired, actual, deviceIndex);
      this.indexPeers();
      changes = planSize(plan);
      // What is already right counts as applied: its later disappearance is drift to repair.
      const pending = new Set(plannedKeys(plan));
      for (const key of desiredKeys(desired)) if (!pending.has(key)) this.applied.add(key);
      failed = !(await this.apply(plan, failure));
    } catch (error) {
      failed = true;
      failure.error ??= error;
      this.events.emit({ type: "error", error });
    }
    this.lastConverged = !failed;
    this.events.emit({ type: "pass", trigger, changes, durationMs: performance.now() - started, converged: !failed });
    return { converged: !failed, error: failure.error };
  }

  /** Applies a plan entry by entry; one failing entry does not stop the others. True when all succeeded. */
  private async apply(plan: Plan, failure: { error?: unknown }): Promise<boolean> {
    const { kernel } = this.options;
    let ok = true;
    const step = async (kind: EntryKind, key: string, put: boolean, action: () => Promise<void>): Promise<void> => {
      const id = `${kind}:${key}`;
      const entry: EntryRef = { kind, key, ...this.peerOf(kind, key) };
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
    // Removals of what should not be there first (routes before the entries they use), then additions in the order
    // traffic needs them (FDB and ARP before the route). Within one kind the requests overlap on the socket.
    const all = <T>(items: readonly T[], each: (item: T) => Promise<void>): Promise<void> =>
      Promise.all(items.map(each)).then(() => undefined);
    await all(plan.routes.remove, (r) =>
      step("route", routeKey(r), false, () => kernel.deleteRoute({ ...r, protocol: TRELLIS_ROUTE_PROTOCOL })),
    );
    await all(plan.neighbors.remove, (n) => step("neighbor", n.ip, false, () => kernel.deleteNeighbor(n)));
    await all(plan.fdb.remove, (f) =>
      step("fdb", f.mac, false, () =>
        kernel.deleteFdb({ index: f.index, mac: f.mac, ...(f.dst === undefined ? {} : { dst: f.dst }) }),
      ),
    );
    await all(plan.addresses.remove, (a) =>
      step("address", `${a.address}/${a.prefixLen}`, false, () => kernel.deleteAddress(a)),
    );
    await all(plan.addresses.put, (a) =>
      step("address", `${a.address}/${a.prefixLen}`, true, () => kernel.addAddress(a)),
    );
    await all(plan.fdb.put, (f) => step("fdb", f.mac, true, () => kernel.replaceFdb(f)));
    await all(plan.neighbors.put, (n) => step("neighbor", n.ip, true, () => kernel.replaceNeighbor(n)));
    await all(plan.routes.put, (r) => step("route", routeKey(r), true, () => kernel.replaceRoute(r)));
    return ok;
  }
}

/** The device address encodes our subnet: the same address means the same lease. */
function sameOwn(previous: DesiredState, own: OwnLease): boolean {
  return (
    previous.device === undefined || previous.device.address === `${formatCidr(own.subnet).split("/")[0] ?? ""}/32`
  );
}

function desiredKeys(desired: DesiredState): string[] {
  return [
    ...(desired.device === undefined ? [] : [`address:${desired.device.address}`]),
    ...[...desired.routes.keys()].map((k) => `route:${k}`),
    ...[...desired.neighbors.keys()].map((k) => `neighbor:${k}`),
    ...[...desired.fdb.keys()].map((k) => `fdb:${k}`),
  ];
}

function plannedKeys(plan: Plan): string[] {
  return [
    ...plan.addresses.put.map((a) => `address:${a.address}/${a.prefixLen}`),
    ...plan.routes.put.map((r) => `route:${routeKey(r)}`),
    ...plan.neighbors.put.map((n) => `neighbor:${n.ip}`),
    ...plan.fdb.put.map((f) => `fdb:${f.mac}`),
  ];
}

export function describeEntry(entry: EntryRef): string {
  return `${entry.kind} ${entry.key}${entry.subnet === undefined ? "" : ` (peer ${entry.subnet} at ${entry.publicIp ?? "?"})`}`;
}
