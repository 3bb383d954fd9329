// THE in-memory Kernel (the port, lib/src/netlink/kernel.ts) for every unit test: the agent's dataplane and the CNI
// plugin's pod wiring run against it in-process. A FakeWorld holds namespaces ("host" and any a test adds); a
// FakeKernel is a handle on one of them, as openKernel() gives one. Each namespace has links with kinds (vxlan,
// bridge, veth pairs across namespaces, anything a test adds), addresses, routes with protocol and table,
// neighbours, FDB entries and sysctls, and sends change events as rtnetlink does — our own changes included,
// after the request returns. Tests change it "by hand" (edit, addForeignLink, the port's own methods), read it
// (links, routes, …), count the mutating requests (requests) and inject faults (failNext: an errno on the next call
// of an operation; vxlanChangeErrno: a kernel that cannot change vxlan attributes in place). IPv6 as the real adapter
// has it: the family follows the address string, IPv6 strings are kept in RFC 5952 form, lists are IPv4 unless asked
// for 6, IPv6 routes have scope "universe" and metric 1024 unless given. IPv4 strings are stored as given.
import { InvalidArgumentError } from "#lib/errors.js";
import { bytesToIpv6, ipv6ToBytes } from "#lib/netlink/codec.js";
import { NetlinkError } from "#lib/netlink/errors.js";
import { familyOf } from "#lib/netlink/kernel.js";
import type * as port from "#lib/netlink/kernel.js";

interface FakeLink extends port.LinkInfo {
  peer?: { ns: string; index: number };
}

class FakeNamespace {
  readonly links = new Map<number, FakeLink>();
  addresses: port.AddressInfo[] = [];
  routes: port.RouteInfo[] = [];
  neighbors: port.NeighborInfo[] = [];
  fdb: port.FdbEntry[] = [];
  readonly sysctls = new Map<string, string>([["net.ipv4.ip_forward", "0"]]);
  readonly handlers = new Set<(event: port.KernelEvent) => void>();

  emit(event: port.KernelEvent): void {
    // Notifications arrive after the request returns, as from a socket.
    queueMicrotask(() => {
      for (const handler of this.handlers) handler(structuredClone(event));
    });
  }

  /** Removes a link and what hangs on it, as the kernel does. */
  drop(index: number): void {
    const link = this.links.get(index);
    if (link === undefined) return;
    this.links.delete(index);
    this.addresses = this.addresses.filter((a) => a.index !== index);
    this.routes = this.routes.filter((r) => r.oif !== index);
    this.neighbors = this.neighbors.filter((n) => n.index !== index);
    this.fdb = this.fdb.filter((f) => f.index !== index);
    this.emit({ type: "link", action: "del", link: info(link) });
  }
}

/** What the port reports of a link: everything but the fake's own bookkeeping. */
function info(link: FakeLink): port.LinkInfo {
  const { peer: _peer, ...rest } = link;
  return structuredClone(rest);
}

/** An IPv6 string in the form the kernel reports it (invalid ones fail as the real adapter's do); IPv4 as given. */
function canonical(ip: string, field: string): string {
  return familyOf(ip) === 6 ? (bytesToIpv6(ipv6ToBytes(ip, field)) ?? ip) : ip;
}

/** IPv6 routes: the kernel ignores the scope (lists "universe") and gives every route a metric, 1024 by default. */
const IP6_RT_PRIO_USER = 1024;

let macCounter = 0;
const nextMac = (): string =>
  `02:00:00:00:${((macCounter >> 8) & 255).toString(16).padStart(2, "0")}:${(macCounter++ & 255).toString(16).padStart(2, "0")}`;

export class FakeWorld {
  readonly namespaces = new Map<string, FakeNamespace>([["host", new FakeNamespace()]]);
  /** ifindexes are unique across the world's namespaces, so a veth's peerIndex names one link. */
  private nextIndex = 10;

  addNamespace(path: string): void {
    this.namespaces.set(path, new FakeNamespace());
  }

  ns(name: string): FakeNamespace {
    const ns = this.namespaces.get(name);
    if (ns === undefined) throw new Error(`no fake namespace ${name}`);
    return ns;
  }

  /** A handle on a namespace; `id` overrides the identity it reports (default "fake:[<name>]"). */
  kernel(name = "host", id?: string): FakeKernel {
    return new FakeKernel(this, name, id);
  }

  linkNames(name = "host"): string[] {
    return [...this.ns(name).links.values()].map((l) => l.name);
  }

  /** A new link in a namespace, with the next free index unless one is given. */
  addLink(nsName: string, link: Omit<FakeLink, "index"> & { index?: number }): FakeLink {
    const ns = this.ns(nsName);
    if ([...ns.links.values()].some((l) => l.name === link.name))
      throw new NetlinkError("create link", link.name, "EEXIST");
    const created: FakeLink = { ...link, index: link.index ?? this.nextIndex++ };
    ns.links.set(created.index, created);
    ns.emit({ type: "link", action: "new", link: info(created) });
    return created;
  }
}

/** A node's host namespace with its underlay interface (index 2, up, one address), as the agent's tests need it. */
export function fakeNode(underlay: { name: string; mtu: number; address: string; prefixLen: number }): FakeKernel {
  const world = new FakeWorld();
  world.addLink("host", { index: 2, name: underlay.name, mtu: underlay.mtu, up: true, mac: "02:00:00:00:00:02" });
  world.ns("host").addresses.push({ index: 2, address: underlay.address, prefixLen: underlay.prefixLen });
  return world.kernel("host");
}

type Operation = keyof Omit<port.Kernel, "netns" | "netnsId">;

export class FakeKernel implements port.Kernel {
  readonly netns: string | undefined;
  readonly netnsId: string;
  /** Every mutating request, as "operation name-or-index [changes]". */
  readonly requests: string[] = [];
  /** While set, every setLink with vxlan changes fails with this errno (an older kernel: ENOTSUP). */
  vxlanChangeErrno: string | undefined;
  private readonly faults = new Map<Operation, string[]>();
  private readonly subscriptions = new Set<(event: port.KernelEvent) => void>();
  private closed = false;

  constructor(
    readonly world: FakeWorld,
    private readonly name: string,
    id?: string,
  ) {
    this.netns = name === "host" ? undefined : name;
    this.netnsId = id ?? `fake:[${name}]`;
  }

  // ---- for tests: inspect, change by hand, inject faults ----

  private get ns(): FakeNamespace {
    if (this.closed) throw new NetlinkError("use", "kernel", "EBADF");
    return this.world.ns(this.name);
  }

  get links(): ReadonlyMap<number, port.LinkInfo> {
    return this.world.ns(this.name).links;
  }
  get addresses(): readonly port.AddressInfo[] {
    return this.world.ns(this.name).addresses;
  }
  get routes(): readonly port.RouteInfo[] {
    return this.world.ns(this.name).routes;
  }
  get neighbors(): readonly port.NeighborInfo[] {
    return this.world.ns(this.name).neighbors;
  }
  get fdb(): readonly port.FdbEntry[] {
    return this.world.ns(this.name).fdb;
  }

  byName(name: string): port.LinkInfo | undefined {
    const link = [...this.ns.links.values()].find((l) => l.name === name);
    return link === undefined ? undefined : info(link);
  }

  /** A link added or changed by someone else (an admin, another program). */
  edit(link: port.LinkInfo): void {
    const ns = this.ns;
    ns.links.set(link.index, structuredClone(link));
    ns.emit({ type: "link", action: "new", link });
  }

  addForeignLink(name: string, kind: string | undefined): port.LinkInfo {
    return info(this.world.addLink(this.name, { name, mtu: 1500, up: true, ...(kind === undefined ? {} : { kind }) }));
  }

  /** Removes entries by hand (an admin's `ip route del`, …), with the kernel's event for each. */
  removeByHand(
    kind: "route" | "neighbor" | "fdb",
    match: (entry: port.RouteInfo & port.NeighborInfo & port.FdbEntry) => boolean,
  ): number {
    const ns = this.ns;
    const list = kind === "route" ? ns.routes : kind === "neighbor" ? ns.neighbors : ns.fdb;
    const gone = list.filter((entry) => match(entry as port.RouteInfo & port.NeighborInfo & port.FdbEntry));
    if (kind === "route") ns.routes = ns.routes.filter((r) => !gone.includes(r));
    else if (kind === "neighbor") ns.neighbors = ns.neighbors.filter((n) => !gone.includes(n));
    else ns.fdb = ns.fdb.filter((f) => !gone.includes(f));
    for (const entry of gone) {
      if (kind === "route") ns.emit({ type: "route", action: "del", route: entry as port.RouteInfo });
      else if (kind === "neighbor") ns.emit({ type: "neighbor", action: "del", neighbor: entry as port.NeighborInfo });
      else ns.emit({ type: "fdb", action: "del", fdb: entry as port.FdbEntry });
    }
    return gone.length;
  }

  /** The next call of `operation` fails with this errno (several calls queue several faults). */
  failNext(operation: Operation, errno: string): void {
    this.faults.set(operation, [...(this.faults.get(operation) ?? []), errno]);
  }

  private fault(operation: Operation, object: string): NetlinkError | undefined {
    const queued = this.faults.get(operation);
    const errno = queued?.shift();
    if (queued?.length === 0) this.faults.delete(operation);
    return errno === undefined ? undefined : new NetlinkError(operation, object, errno);
  }

  /** Runs a request: the injected fault, a closed handle and a thrown NetlinkError all become a rejection. */
  private request<T>(operation: Operation, object: string, body: () => T, record = true): Promise<T> {
    if (record) this.requests.push(`${operation} ${object}`);
    try {
      const fault = this.fault(operation, object);
      if (fault !== undefined) return Promise.reject(fault);
      return Promise.resolve(body());
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  private link(index: number, operation: string): FakeLink {
    const link = this.ns.links.get(index);
    if (link === undefined) throw new NetlinkError(operation, `#${index}`, "ENODEV");
    return link;
  }

  // ---- the port ----

  listLinks(): Promise<port.LinkInfo[]> {
    return this.request("listLinks", "", () => [...this.ns.links.values()].map(info), false);
  }

  getLink(nameOrIndex: string | number): Promise<port.LinkInfo | undefined> {
    return this.request(
      "getLink",
      String(nameOrIndex),
      () => {
        const link =
          typeof nameOrIndex === "number"
            ? this.ns.links.get(nameOrIndex)
            : [...this.ns.links.values()].find((l) => l.name === nameOrIndex);
        return link === undefined ? undefined : info(link);
      },
      false,
    );
  }

  createVxlan(spec: port.VxlanSpec): Promise<port.LinkInfo> {
    return this.request("createVxlan", spec.name, () =>
      info(
        this.world.addLink(this.name, {
          name: spec.name,
          kind: "vxlan",
          mtu: spec.mtu ?? 1450,
          up: false,
          mac: spec.mac ?? nextMac(),
          vxlan: {
            vni: spec.vni,
            port: spec.port,
            local: canonical(spec.local, "local"),
            underlayIndex: spec.underlayIndex,
            learning: spec.learning ?? false,
          },
        }),
      ),
    );
  }

  createBridge(spec: port.BridgeSpec): Promise<port.LinkInfo> {
    return this.request("createBridge", spec.name, () =>
      info(
        this.world.addLink(this.name, {
          name: spec.name,
          kind: "bridge",
          mtu: spec.mtu ?? 1500,
          mac: spec.mac ?? nextMac(),
          up: false,
        }),
      ),
    );
  }

  createVeth(spec: port.VethSpec): Promise<port.LinkInfo> {
    return this.request("createVeth", spec.name, () => {
      const peerNsName = spec.peerNetns ?? this.name;
      const peerNs = this.world.namespaces.get(peerNsName);
      if (peerNs === undefined) throw new NetlinkError("create veth", spec.name, "ENOENT");
      if ([...peerNs.links.values()].some((l) => l.name === spec.peerName))
        throw new NetlinkError("create veth", spec.peerName, "EEXIST");
      const mtu = spec.mtu ?? 1500;
      const host = this.world.addLink(this.name, {
        name: spec.name,
        kind: "veth",
        mtu,
        mac: spec.mac ?? nextMac(),
        up: false,
        ...(spec.alias === undefined ? {} : { alias: spec.alias }),
      });
      const peer = this.world.addLink(peerNsName, {
        name: spec.peerName,
        kind: "veth",
        mtu,
        mac: spec.peerMac ?? nextMac(),
        up: false,
      });
      host.peer = { ns: peerNsName, index: peer.index };
      peer.peer = { ns: this.name, index: host.index };
      host.peerIndex = peer.index;
      peer.peerIndex = host.index;
      return info(host);
    });
  }

  setLink(index: number, changes: port.LinkChanges): Promise<void> {
    return this.request("setLink", `#${index} ${JSON.stringify(changes)}`, () => {
      const link = this.link(index, "set link");
      if (changes.vxlan !== undefined) {
        if (this.vxlanChangeErrno !== undefined)
          throw new NetlinkError("set vxlan", `#${index}`, this.vxlanChangeErrno);
        if (link.vxlan === undefined) throw new NetlinkError("set vxlan", `#${index}`, "ENOTSUP");
        const { learning, local, underlayIndex } = changes.vxlan;
        link.vxlan = {
          ...link.vxlan,
          ...(learning === undefined ? {} : { learning }),
          ...(local === undefined ? {} : { local: canonical(local, "local") }),
          ...(underlayIndex === undefined ? {} : { underlayIndex }),
        };
      }
      if (changes.up !== undefined) link.up = changes.up;
      if (changes.mtu !== undefined) link.mtu = changes.mtu;
      if (changes.mac !== undefined) link.mac = changes.mac;
      if (changes.alias !== undefined) link.alias = changes.alias;
      if (changes.masterIndex !== undefined) {
        if (changes.masterIndex === 0) delete link.masterIndex;
        else link.masterIndex = changes.masterIndex;
      }
      this.ns.emit({ type: "link", action: "new", link: info(link) });
    });
  }

  setHairpin(index: number, on: boolean): Promise<void> {
    return this.request("setHairpin", `#${index}`, () => {
      const link = this.link(index, "set hairpin");
      if (link.masterIndex === undefined) throw new NetlinkError("set hairpin", `#${index}`, "ENOTSUP");
      link.hairpin = on;
    });
  }

  deleteLink(index: number): Promise<void> {
    return this.request("deleteLink", `#${index}`, () => {
      const link = this.ns.links.get(index);
      if (link === undefined) return;
      this.ns.drop(index);
      // A veth pair goes with either end.
      if (link.peer !== undefined) this.world.namespaces.get(link.peer.ns)?.drop(link.peer.index);
    });
  }

  listAddresses(index?: number, family: port.IpFamily = 4): Promise<port.AddressInfo[]> {
    return this.request(
      "listAddresses",
      String(index ?? ""),
      () =>
        this.ns.addresses
          .filter((a) => familyOf(a.address) === family && (index === undefined || a.index === index))
          .map((a) => ({ ...a })),
      false,
    );
  }

  addAddress(address: port.AddressInfo): Promise<void> {
    return this.request("addAddress", `${address.address}/${address.prefixLen} #${address.index}`, () => {
      this.link(address.index, "add address");
      const entry = { ...address, address: canonical(address.address, "address") };
      this.ns.addresses = [
        ...this.ns.addresses.filter((a) => !(a.index === entry.index && a.address === entry.address)),
        entry,
      ];
      this.ns.emit({ type: "address", action: "new", address: entry });
    });
  }

  deleteAddress(address: port.AddressInfo): Promise<void> {
    return this.request("deleteAddress", `${address.address}/${address.prefixLen} #${address.index}`, () => {
      const ip = canonical(address.address, "address");
      const gone = this.ns.addresses.filter((a) => a.index === address.index && a.address === ip);
      this.ns.addresses = this.ns.addresses.filter((a) => !gone.includes(a));
      for (const a of gone) this.ns.emit({ type: "address", action: "del", address: a });
    });
  }

  listRoutes(filter: port.RouteFilter = {}): Promise<port.RouteInfo[]> {
    const table = filter.table ?? 254;
    const family = filter.family ?? 4;
    return this.request(
      "listRoutes",
      "",
      () =>
        this.ns.routes
          .filter(
            (r) =>
              familyOf(r.dst) === family &&
              (table === "all" || r.table === table) &&
              (filter.protocol === undefined || r.protocol === filter.protocol) &&
              (filter.oif === undefined || r.oif === filter.oif),
          )
          .map((r) => ({ ...r })),
      false,
    );
  }

  replaceRoute(route: port.RouteSpec): Promise<void> {
    return this.request("replaceRoute", `${route.dst}/${route.prefixLen}`, () => {
      if (route.oif !== undefined) this.link(route.oif, "replace route");
      const dst = canonical(route.dst, "dst");
      const v6 = familyOf(dst) === 6;
      const gateway = route.gateway === undefined ? undefined : canonical(route.gateway, "gateway");
      if (gateway !== undefined && familyOf(gateway) !== familyOf(dst))
        throw new InvalidArgumentError("gateway", gateway, `of the same family as dst "${dst}"`);
      const metric = route.metric ?? (v6 ? IP6_RT_PRIO_USER : undefined);
      const entry: port.RouteInfo = {
        dst,
        prefixLen: route.prefixLen,
        ...(gateway === undefined ? {} : { gateway }),
        ...(route.oif === undefined ? {} : { oif: route.oif }),
        protocol: route.protocol ?? 3,
        table: route.table ?? 254,
        scope: v6 ? "universe" : (route.scope ?? (gateway === undefined ? "link" : "universe")),
        type: "unicast",
        onlink: route.onlink ?? false,
        ...(metric === undefined ? {} : { metric }),
      };
      this.ns.routes = [
        ...this.ns.routes.filter((r) => !(r.dst === dst && r.prefixLen === route.prefixLen && r.table === entry.table)),
        entry,
      ];
      this.ns.emit({ type: "route", action: "new", route: entry });
    });
  }

  deleteRoute(route: port.RouteSpec): Promise<void> {
    return this.request("deleteRoute", `${route.dst}/${route.prefixLen}`, () => {
      const table = route.table ?? 254;
      const dst = canonical(route.dst, "dst");
      const gone = this.ns.routes.filter(
        (r) =>
          r.dst === dst &&
          r.prefixLen === route.prefixLen &&
          r.table === table &&
          (route.protocol === undefined || r.protocol === route.protocol),
      );
      this.ns.routes = this.ns.routes.filter((r) => !gone.includes(r));
      for (const r of gone) this.ns.emit({ type: "route", action: "del", route: r });
    });
  }

  listNeighbors(index?: number, family: port.IpFamily = 4): Promise<port.NeighborInfo[]> {
    return this.request(
      "listNeighbors",
      String(index ?? ""),
      () =>
        this.ns.neighbors
          .filter((n) => familyOf(n.ip) === family && (index === undefined || n.index === index))
          .map((n) => ({ ...n })),
      false,
    );
  }

  replaceNeighbor(n: port.NeighborSpec): Promise<void> {
    return this.request("replaceNeighbor", `${n.ip} #${n.index}`, () => {
      this.link(n.index, "replace neighbour");
      const entry: port.NeighborInfo = {
        index: n.index,
        ip: canonical(n.ip, "ip"),
        mac: n.mac,
        state: n.permanent ? "permanent" : "reachable",
        permanent: n.permanent,
      };
      this.ns.neighbors = [...this.ns.neighbors.filter((x) => !(x.index === n.index && x.ip === entry.ip)), entry];
      this.ns.emit({ type: "neighbor", action: "new", neighbor: entry });
    });
  }

  deleteNeighbor(n: { index: number; ip: string }): Promise<void> {
    return this.request("deleteNeighbor", `${n.ip} #${n.index}`, () => {
      const ip = canonical(n.ip, "ip");
      const gone = this.ns.neighbors.filter((x) => x.index === n.index && x.ip === ip);
      this.ns.neighbors = this.ns.neighbors.filter((x) => !gone.includes(x));
      for (const x of gone) this.ns.emit({ type: "neighbor", action: "del", neighbor: x });
    });
  }

  listFdb(index?: number): Promise<port.FdbEntry[]> {
    return this.request(
      "listFdb",
      String(index ?? ""),
      () => this.ns.fdb.filter((f) => index === undefined || f.index === index).map((f) => ({ ...f })),
      false,
    );
  }

  replaceFdb(entry: port.FdbSpec): Promise<void> {
    return this.request("replaceFdb", `${entry.mac} #${entry.index}`, () => {
      this.link(entry.index, "replace fdb entry");
      const dst = canonical(entry.dst, "dst");
      const fdb: port.FdbEntry = { index: entry.index, mac: entry.mac, dst, permanent: true, self: true };
      this.ns.fdb = [...this.ns.fdb.filter((f) => !(f.index === entry.index && f.mac === entry.mac)), fdb];
      this.ns.emit({ type: "fdb", action: "new", fdb });
    });
  }

  deleteFdb(entry: { index: number; mac: string; dst?: string }): Promise<void> {
    return this.request("deleteFdb", `${entry.mac} #${entry.index}`, () => {
      const dst = entry.dst === undefined ? undefined : canonical(entry.dst, "dst");
      const gone = this.ns.fdb.filter(
        (f) => f.index === entry.index && f.mac === entry.mac && (dst === undefined || f.dst === dst),
      );
      this.ns.fdb = this.ns.fdb.filter((f) => !gone.includes(f));
      for (const f of gone) this.ns.emit({ type: "fdb", action: "del", fdb: f });
    });
  }

  getSysctl(name: string): Promise<string> {
    return this.request("getSysctl", name, () => this.ns.sysctls.get(name) ?? "0", false);
  }

  setSysctl(name: string, value: string): Promise<void> {
    return this.request("setSysctl", name, () => {
      this.ns.sysctls.set(name, value);
    });
  }

  watch(handler: (event: port.KernelEvent) => void): port.Subscription {
    const ns = this.ns;
    ns.handlers.add(handler);
    this.subscriptions.add(handler);
    return {
      close: () => {
        ns.handlers.delete(handler);
        this.subscriptions.delete(handler);
      },
    };
  }

  close(): void {
    const ns = this.world.namespaces.get(this.name);
    for (const handler of this.subscriptions) ns?.handlers.delete(handler);
    this.subscriptions.clear();
    this.closed = true;
  }
}
