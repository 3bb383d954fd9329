// An in-memory kernel (the Kernel port) with several namespaces, for running the plugin in-process: enough of links,
// veth pairs across namespaces, bridges, addresses, routes and sysctls to behave like rtnetlink for the pod wiring.
import { NetlinkError } from "../../../lib/src/netlink/errors.js";
import type * as port from "../../../lib/src/netlink/kernel.js";

interface FakeLink extends port.LinkInfo {
  peer?: { ns: string; index: number };
}

class FakeNamespace {
  links = new Map<number, FakeLink>();
  addresses: port.AddressInfo[] = [];
  routes: port.RouteInfo[] = [];
  sysctls = new Map<string, string>([["net.ipv4.ip_forward", "0"]]);
}

let nextIndex = 2;
let macCounter = 0;
const mac = (): string =>
  `02:00:00:00:${((macCounter >> 8) & 255).toString(16).padStart(2, "0")}:${(macCounter++ & 255).toString(16).padStart(2, "0")}`;

export class FakeWorld {
  readonly namespaces = new Map<string, FakeNamespace>([["host", new FakeNamespace()]]);

  addNamespace(path: string): void {
    this.namespaces.set(path, new FakeNamespace());
  }

  ns(name: string): FakeNamespace {
    const ns = this.namespaces.get(name);
    if (ns === undefined) throw new Error(`no fake namespace ${name}`);
    return ns;
  }

  kernel(name: string): port.Kernel {
    return new FakeKernel(this, name);
  }

  linkNames(name = "host"): string[] {
    return [...this.ns(name).links.values()].map((l) => l.name);
  }
}

class FakeKernel implements port.Kernel {
  readonly netns: string | undefined;
  private closed = false;

  constructor(
    private readonly world: FakeWorld,
    private readonly name: string,
  ) {
    this.netns = name === "host" ? undefined : name;
  }

  private get ns(): FakeNamespace {
    if (this.closed) throw new NetlinkError("use", "kernel", "EBADF");
    return this.world.ns(this.name);
  }

  private byName(name: string): FakeLink | undefined {
    return [...this.ns.links.values()].find((l) => l.name === name);
  }

  private link(index: number, operation: string): FakeLink {
    const link = this.ns.links.get(index);
    if (link === undefined) throw new NetlinkError(operation, `#${index}`, "ENODEV");
    return link;
  }

  listLinks(): Promise<port.LinkInfo[]> {
    return Promise.resolve([...this.ns.links.values()].map((l) => ({ ...l })));
  }

  getLink(nameOrIndex: string | number): Promise<port.LinkInfo | undefined> {
    const link = typeof nameOrIndex === "number" ? this.ns.links.get(nameOrIndex) : this.byName(nameOrIndex);
    return Promise.resolve(link === undefined ? undefined : { ...link });
  }

  createVxlan(): Promise<port.LinkInfo> {
    return Promise.reject(new Error("not in the fake"));
  }

  private add(ns: FakeNamespace, link: Omit<FakeLink, "index">): FakeLink {
    if ([...ns.links.values()].some((l) => l.name === link.name))
      throw new NetlinkError("create link", link.name, "EEXIST");
    const created: FakeLink = { ...link, index: nextIndex++ };
    ns.links.set(created.index, created);
    return created;
  }

  createBridge(spec: port.BridgeSpec): Promise<port.LinkInfo> {
    return Promise.resolve({
      ...this.add(this.ns, {
        name: spec.name,
        kind: "bridge",
        mtu: spec.mtu ?? 1500,
        mac: spec.mac ?? mac(),
        up: false,
      }),
    });
  }

  createVeth(spec: port.VethSpec): Promise<port.LinkInfo> {
    const peerNsName = spec.peerNetns ?? this.name;
    const peerNs = this.world.namespaces.get(peerNsName);
    if (peerNs === undefined) return Promise.reject(new NetlinkError("create veth", spec.name, "ENOENT"));
    if ([...peerNs.links.values()].some((l) => l.name === spec.peerName))
      return Promise.reject(new NetlinkError("create veth", spec.peerName, "EEXIST"));
    const mtu = spec.mtu ?? 1500;
    const host = this.add(this.ns, { name: spec.name, kind: "veth", mtu, mac: spec.mac ?? mac(), up: false });
    const peer = this.add(peerNs, { name: spec.peerName, kind: "veth", mtu, mac: spec.peerMac ?? mac(), up: false });
    host.peer = { ns: peerNsName, index: peer.index };
    peer.peer = { ns: this.name, index: host.index };
    return Promise.resolve({ ...host });
  }

  setLink(index: number, changes: port.LinkChanges): Promise<void> {
    const link = this.link(index, "set link");
    if (changes.up !== undefined) link.up = changes.up;
    if (changes.mtu !== undefined) link.mtu = changes.mtu;
    if (changes.mac !== undefined) link.mac = changes.mac;
    if (changes.masterIndex !== undefined) {
      if (changes.masterIndex === 0) delete link.masterIndex;
      else link.masterIndex = changes.masterIndex;
    }
    return Promise.resolve();
  }

  setHairpin(index: number, on: boolean): Promise<void> {
    const link = this.link(index, "set hairpin");
    if (link.masterIndex === undefined) return Promise.reject(new NetlinkError("set hairpin", `#${index}`, "ENOTSUP"));
    link.hairpin = on;
    return Promise.resolve();
  }

  deleteLink(index: number): Promise<void> {
    const link = this.ns.links.get(index);
    if (link === undefined) return Promise.resolve();
    this.ns.links.delete(index);
    this.ns.addresses = this.ns.addresses.filter((a) => a.index !== index);
    this.ns.routes = this.ns.routes.filter((r) => r.oif !== index);
    if (link.peer !== undefined) {
      const peerNs = this.world.namespaces.get(link.peer.ns);
      peerNs?.links.delete(link.peer.index);
      if (peerNs !== undefined) {
        peerNs.addresses = peerNs.addresses.filter((a) => a.index !== link.peer?.index);
        peerNs.routes = peerNs.routes.filter((r) => r.oif !== link.peer?.index);
      }
    }
    return Promise.resolve();
  }

  listAddresses(index?: number): Promise<port.AddressInfo[]> {
    return Promise.resolve(
      this.ns.addresses.filter((a) => index === undefined || a.index === index).map((a) => ({ ...a })),
    );
  }

  addAddress(address: port.AddressInfo): Promise<void> {
    this.link(address.index, "add address");
    this.ns.addresses = this.ns.addresses.filter((a) => !(a.index === address.index && a.address === address.address));
    this.ns.addresses.push({ ...address });
    return Promise.resolve();
  }

  deleteAddress(address: port.AddressInfo): Promise<void> {
    this.ns.addresses = this.ns.addresses.filter((a) => !(a.index === address.index && a.address === address.address));
    return Promise.resolve();
  }

  listRoutes(): Promise<port.RouteInfo[]> {
    return Promise.resolve(this.ns.routes.map((r) => ({ ...r })));
  }

  replaceRoute(route: port.RouteSpec): Promise<void> {
    if (route.oif !== undefined) this.link(route.oif, "replace route");
    this.ns.routes = this.ns.routes.filter((r) => !(r.dst === route.dst && r.prefixLen === route.prefixLen));
    const info: port.RouteInfo = {
      dst: route.dst,
      prefixLen: route.prefixLen,
      protocol: route.protocol ?? 3,
      table: 254,
      scope: "universe",
      type: "unicast",
      onlink: false,
    };
    if (route.gateway !== undefined) info.gateway = route.gateway;
    if (route.oif !== undefined) info.oif = route.oif;
    this.ns.routes.push(info);
    return Promise.resolve();
  }

  deleteRoute(route: port.RouteSpec): Promise<void> {
    this.ns.routes = this.ns.routes.filter((r) => !(r.dst === route.dst && r.prefixLen === route.prefixLen));
    return Promise.resolve();
  }

  listNeighbors(): Promise<port.NeighborInfo[]> {
    return Promise.resolve([]);
  }
  replaceNeighbor(): Promise<void> {
    return Promise.reject(new Error("not in the fake"));
  }
  deleteNeighbor(): Promise<void> {
    return Promise.resolve();
  }
  listFdb(): Promise<port.FdbEntry[]> {
    return Promise.resolve([]);
  }
  replaceFdb(): Promise<void> {
    return Promise.reject(new Error("not in the fake"));
  }
  deleteFdb(): Promise<void> {
    return Promise.resolve();
  }

  getSysctl(name: string): Promise<string> {
    return Promise.resolve(this.ns.sysctls.get(name) ?? "0");
  }

  setSysctl(name: string, value: string): Promise<void> {
    this.ns.sysctls.set(name, value);
    return Promise.resolve();
  }

  watch(): port.Subscription {
    throw new Error("not in the fake");
  }

  close(): void {
    this.closed = true;
  }
}
