// The PORT to the kernel's networking state. The VXLAN/host-gw backends, the reconciler and the CNI plugin's pod wiring
// depend only on these plain-data types and the `Kernel` interface; the one real implementation is
// rtnetlink-kernel.ts, unit tests implement it with fakes. Conventions: IPv4 and IPv6; the family follows each address
// string (dotted IPv4, or IPv6 given in any valid form and reported in RFC 5952 form as `ip -6` prints it); lists are
// IPv4 unless asked for 6. MACs as lowercase "aa:bb:cc:dd:ee:ff", links by ifindex (names only to create or look up).
//
// Failures are typed (./errors.ts): NetlinkError with code "NETLINK" and an `errno`, or "PERMISSION_DENIED".
// Adds and replaces are idempotent, deletes of what is already gone succeed; only link creation is exclusive
// (EEXIST), so a caller notices a device it did not make.

/** An address family: 4 (AF_INET) or 6 (AF_INET6). */
export type IpFamily = 4 | 6;

/** The family an address string is written in (the port's one rule for it): anything with a ":" is meant as IPv6. */
export function familyOf(address: string): IpFamily {
  return address.includes(":") ? 6 : 4;
}

export interface VxlanInfo {
  vni: number;
  /** UDP destination port, e.g. 8472. */
  port: number;
  /** Source address for the outer packets (IFLA_VXLAN_LOCAL, or IFLA_VXLAN_LOCAL6 for an IPv6 underlay). */
  local?: string;
  /** The underlay device the tunnel is bound to. */
  underlayIndex?: number;
  learning: boolean;
}

export interface LinkInfo {
  index: number;
  name: string;
  /** rtnetlink kind ("vxlan", "bridge", "veth", …); absent for physical devices and lo. */
  kind?: string;
  mtu: number;
  mac?: string;
  /** Administratively up (IFF_UP). */
  up: boolean;
  masterIndex?: number;
  vxlan?: VxlanInfo;
  /** Present for a bridge port: whether hairpin mode is on. */
  hairpin?: boolean;
  /** IFLA_IFALIAS: a free-text label; ours mark links we made (the CNI plugin's host veths). */
  alias?: string;
  /** IFLA_LINK: for a veth, its peer's ifindex (in the peer's namespace). */
  peerIndex?: number;
}

export interface VxlanSpec {
  name: string;
  vni: number;
  port: number;
  local: string;
  underlayIndex: number;
  /** Default false: peers are programmed explicitly (neighbour + FDB), never learnt. */
  learning?: boolean;
  mtu?: number;
  mac?: string;
}

export interface BridgeSpec {
  name: string;
  mtu?: number;
  mac?: string;
}

export interface VethSpec {
  /** The end that stays in this kernel's namespace. */
  name: string;
  peerName: string;
  mtu?: number;
  mac?: string;
  peerMac?: string;
  /** Create the peer end directly in this namespace (path like /run/netns/x or /proc/PID/ns/net, or a name). */
  peerNetns?: string;
  /** IFLA_IFALIAS of this namespace's end. */
  alias?: string;
}

export interface LinkChanges {
  up?: boolean;
  mtu?: number;
  /** 0 removes the link from its master. */
  masterIndex?: number;
  mac?: string;
  alias?: string;
  /**
   * A vxlan link's attributes the kernel changes in place (RTM_NEWLINK on the existing link; verified on 6.x:
   * learning, local and the underlay device can be changed; VNI and port cannot, EOPNOTSUPP).
   */
  vxlan?: { learning?: boolean; local?: string; underlayIndex?: number };
}

export interface AddressInfo {
  index: number;
  address: string;
  prefixLen: number;
}

export type RouteScope = "universe" | "site" | "link" | "host" | "nowhere";
export type RouteType =
  | "unspec"
  | "unicast"
  | "local"
  | "broadcast"
  | "anycast"
  | "multicast"
  | "blackhole"
  | "unreachable"
  | "prohibit"
  | "throw"
  | "nat"
  | "xresolve";

/** What to install (always a unicast route). */
export interface RouteSpec {
  /** Network address; "0.0.0.0" (or "::") with prefixLen 0 is the default route. */
  dst: string;
  /** 0–32, or 0–128 for IPv6. */
  prefixLen: number;
  /** Of dst's family. */
  gateway?: string;
  oif?: number;
  /** RTPROT_* number; our own number marks routes we own. Default 3 (boot), as `ip route` uses. */
  protocol?: number;
  /** Default 254 (main). */
  table?: number;
  /** Default "universe" with a gateway, "link" without. IPv6 has no route scopes: ignored, listed as "universe". */
  scope?: RouteScope;
  /** Trust that the gateway is reachable on `oif` (e.g. a /32 on a vxlan device). */
  onlink?: boolean;
  metric?: number;
}

export interface RouteInfo {
  dst: string;
  prefixLen: number;
  gateway?: string;
  oif?: number;
  protocol: number;
  table: number;
  scope: RouteScope;
  type: RouteType;
  onlink: boolean;
  metric?: number;
}

export interface RouteFilter {
  /** Default 254 (main); "all" for every table. */
  table?: number | "all";
  protocol?: number;
  oif?: number;
  /**
   * Default 4. IPv6 lists hold many routes the kernel made itself (fe80::/64 and local addresses with protocol
   * kernel, ff00::/8 multicast in table local; every IPv6 route has a metric, 1024 unless given): filter by protocol.
   */
  family?: IpFamily;
}

export type NeighborState =
  "permanent" | "noarp" | "reachable" | "stale" | "delay" | "probe" | "failed" | "incomplete" | "none";

export interface NeighborSpec {
  index: number;
  ip: string;
  mac: string;
  /** Permanent entries never expire; otherwise the entry starts as reachable and ages. */
  permanent: boolean;
}

export interface NeighborInfo {
  index: number;
  ip: string;
  mac?: string;
  state: NeighborState;
  permanent: boolean;
}

/** A forwarding entry on a vxlan device: frames for `mac` go in UDP to `dst`. */
export interface FdbSpec {
  index: number;
  mac: string;
  dst: string;
}

export interface FdbEntry {
  index: number;
  mac: string;
  dst?: string;
  permanent: boolean;
  /** NTF_SELF: the entry belongs to the device itself (vxlan), not to a bridge it is enslaved to. */
  self: boolean;
  masterIndex?: number;
}

export type ChangeAction = "new" | "del";

/** "new" means created or changed. "overrun": notifications were lost (socket buffer full), resync everything. */
export type KernelEvent =
  | { type: "link"; action: ChangeAction; link: LinkInfo }
  | { type: "address"; action: ChangeAction; address: AddressInfo }
  | { type: "route"; action: ChangeAction; route: RouteInfo }
  | { type: "neighbor"; action: ChangeAction; neighbor: NeighborInfo }
  | { type: "fdb"; action: ChangeAction; fdb: FdbEntry }
  | { type: "overrun"; reason: string };

export interface Subscription {
  /** Stops the events and releases the socket; safe to call twice. */
  close(): void;
}

export interface Kernel {
  /**
   * A path to the namespace this handle works in, valid in this process while the handle is open (the real adapter's
   * is /proc/self/fd/N of its own descriptor, so it reaches the namespace whatever became of the path it was opened
   * by); undefined for the caller's own namespace.
   */
  readonly netns: string | undefined;
  /** The identity of that namespace as readlink(/proc/PID/ns/net) shows it, e.g. "net:[4026531840]". */
  readonly netnsId: string;

  listLinks(): Promise<LinkInfo[]>;
  getLink(nameOrIndex: string | number): Promise<LinkInfo | undefined>;
  /** Exclusive: an existing link of that name fails with errno EEXIST. Returns the new link, down. */
  createVxlan(spec: VxlanSpec): Promise<LinkInfo>;
  createBridge(spec: BridgeSpec): Promise<LinkInfo>;
  /** Returns this namespace's end; the peer lives in `peerNetns` (or here). */
  createVeth(spec: VethSpec): Promise<LinkInfo>;
  setLink(index: number, changes: LinkChanges): Promise<void>;
  /** Hairpin mode of a bridge port (the link must already have a bridge master, else errno ENOTSUP). */
  setHairpin(index: number, on: boolean): Promise<void>;
  deleteLink(index: number): Promise<void>;

  /** IPv4 addresses unless `family` is 6 (link-local fe80::/10 ones included). */
  listAddresses(index?: number, family?: IpFamily): Promise<AddressInfo[]>;
  /** IPv6 addresses are added without duplicate address detection (IFA_F_NODAD): usable at once, never tentative. */
  addAddress(address: AddressInfo): Promise<void>;
  deleteAddress(address: AddressInfo): Promise<void>;

  /** IPv4 routes unless `filter.family` is 6. */
  listRoutes(filter?: RouteFilter): Promise<RouteInfo[]>;
  replaceRoute(route: RouteSpec): Promise<void>;
  /** Matches dst/prefixLen/table and, when given, gateway, oif, protocol and metric. */
  deleteRoute(route: RouteSpec): Promise<void>;

  /** ARP entries, or with `family` 6 NDP entries (the kernel's own for multicast among them, state "noarp"). */
  listNeighbors(index?: number, family?: IpFamily): Promise<NeighborInfo[]>;
  replaceNeighbor(neighbor: NeighborSpec): Promise<void>;
  deleteNeighbor(neighbor: { index: number; ip: string }): Promise<void>;

  /** Entries of either family's `dst`. */
  listFdb(index?: number): Promise<FdbEntry[]>;
  /** `bridge fdb replace MAC dev DEV dst IP self permanent` */
  replaceFdb(entry: FdbSpec): Promise<void>;
  /** Without `dst`, removes the MAC's entry with all its destinations. */
  deleteFdb(entry: { index: number; mac: string; dst?: string }): Promise<void>;

  /** Dotted sysctl name as sysctl(8) writes it ("net.ipv4.ip_forward"; "/" stands for a "." inside a part). */
  getSysctl(name: string): Promise<string>;
  setSysctl(name: string, value: string): Promise<void>;

  /**
   * Link, address and route (IPv4 and IPv6), neighbour (ARP and NDP) and FDB changes, on a socket of their own,
   * delivered as they happen; an event's addresses tell its family. The handler must not throw. A live subscription
   * keeps the process running until it is closed.
   */
  watch(handler: (event: KernelEvent) => void): Subscription;
  /** Closes every socket (subscriptions included); later calls fail with errno EBADF. */
  close(): void;
}
