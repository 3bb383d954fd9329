// The one real adapter of the Kernel port, over the `netlink` package's rtnetlink socket. Its socket is created
// synchronously on the calling thread, so `withNetns` can place it inside another network namespace (a pod's).
import type { LinkAttrs } from "netlink/dist/rt/ifla.js";
import type { RtNetlinkSocket } from "netlink/dist/rt/rt.js";
import { deleteLinkBlocking } from "./blocking-request.js";
import { checkIndex, checkLinkName } from "./codec.js";
import { InvalidArgumentError } from "../errors.js";
import { GONE_ERRNOS, NetlinkError, isNetlinkErrno, translateError } from "./errors.js";
import { familyOf } from "./kernel.js";
import type * as port from "./kernel.js";
import { currentNetnsId, NetnsHandle, withNetns } from "./netns.js";
import { ifla, rtnetlink } from "./package.js";
import {
  AF_BRIDGE,
  addressFromMessage,
  afOf,
  fdbFromMessage,
  linkFromMessage,
  neighborFromMessage,
  routeFromMessage,
} from "./parse.js";
import { RequestQueue, closedError } from "./request-queue.js";
import * as req from "./requests.js";
import { readSysctl, writeSysctl } from "./sysctl.js";
import { EventSubscription } from "./watch.js";

const { NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE } = req;

/**
 * Opens a handle on the kernel's network state of `netns` (a path like /run/netns/x or /proc/PID/ns/net, a name
 * under /run/netns, or an open namespace handle, which stays the caller's to close), or of the caller's own
 * namespace. Throws code NOT_FOUND when the namespace does not exist.
 */
export function openKernel(options: { netns?: string | NetnsHandle } = {}): port.Kernel {
  const given = options.netns;
  const netns =
    given === undefined ? undefined : typeof given === "string" ? NetnsHandle.open(given) : given.duplicate();
  try {
    const socket =
      netns === undefined ? rtnetlink.createRtNetlink() : withNetns(netns, () => rtnetlink.createRtNetlink());
    return new RtnetlinkKernel(socket, netns);
  } catch (error) {
    netns?.close();
    throw translateError(error, "open netlink socket in", netns?.path ?? "own namespace");
  }
}

const notNull = <T>(value: T | undefined): value is T => value !== undefined;

/** The family asked for, checked (a typo must not silently list IPv4); the default is 4, as before IPv6. */
function checkFamily(family: port.IpFamily | undefined): port.IpFamily {
  const value: unknown = family ?? 4;
  if (value !== 4 && value !== 6) throw new InvalidArgumentError("family", value, "4 or 6");
  return value;
}

/** What a dump lists, for its errors ("IPv6 routes"; IPv4 ones named as before there was IPv6). */
const listed = (what: string, family: port.IpFamily): string => (family === 6 ? `IPv6 ${what}` : what);

class RtnetlinkKernel implements port.Kernel {
  readonly netns: string | undefined;
  readonly netnsId: string;
  private readonly requests: RequestQueue;
  private readonly subscriptions = new Set<EventSubscription>();

  constructor(
    socket: RtNetlinkSocket,
    private readonly netnsHandle: NetnsHandle | undefined,
  ) {
    this.requests = new RequestQueue(socket);
    // Our own descriptor's path: it reaches the namespace for as long as we hold it open.
    this.netns = netnsHandle === undefined ? undefined : `/proc/self/fd/${netnsHandle.fd}`;
    this.netnsId = netnsHandle?.id ?? currentNetnsId();
  }

  private request<T>(operation: string, object: string, send: (socket: RtNetlinkSocket) => Promise<T>): Promise<T> {
    // Every dump is a "list"; it needs the socket to itself.
    return this.requests.request(operation, object, send, operation === "list");
  }

  /** Deletes are idempotent: "already gone" is success. */
  private async remove(
    operation: string,
    object: string,
    send: (socket: RtNetlinkSocket) => Promise<unknown>,
  ): Promise<void> {
    try {
      await this.request(operation, object, send);
    } catch (error) {
      if (!isNetlinkErrno(error, ...GONE_ERRNOS)) throw error;
    }
  }

  async listLinks(): Promise<port.LinkInfo[]> {
    const messages = await this.request("list", "links", (s) => s.getLinks());
    return messages.map(linkFromMessage).filter(notNull);
  }

  async getLink(nameOrIndex: string | number): Promise<port.LinkInfo | undefined> {
    const byIndex = typeof nameOrIndex === "number";
    try {
      const [message] = await this.request("get link", String(nameOrIndex), (s) =>
        byIndex ? s.getLink({ index: checkIndex(nameOrIndex) }) : s.getLink({}, { ifname: checkLinkName(nameOrIndex) }),
      );
      return message === undefined ? undefined : linkFromMessage(message);
    } catch (error) {
      if (isNetlinkErrno(error, "ENODEV")) return undefined;
      throw error;
    }
  }

  private async createLink(operation: string, attrs: LinkAttrs): Promise<port.LinkInfo> {
    const name = attrs.ifname ?? "";
    await this.request(operation, name, (s) => s.newLink({}, attrs, { flags: NLM_F_CREATE | NLM_F_EXCL }));
    const link = await this.getLink(name);
    if (link === undefined)
      throw new NetlinkError(operation, name, "ENODEV", { detail: "the link vanished right after creation" });
    return link;
  }

  async createVxlan(spec: port.VxlanSpec): Promise<port.LinkInfo> {
    return await this.createLink("create vxlan link", req.newLinkAttrs(spec, req.vxlanInfo(spec)));
  }

  async createBridge(spec: port.BridgeSpec): Promise<port.LinkInfo> {
    return await this.createLink("create bridge", req.newLinkAttrs(spec, ifla.formatInfo({ kind: "bridge" })));
  }

  async createVeth(spec: port.VethSpec): Promise<port.LinkInfo> {
    const peerNetns = spec.peerNetns === undefined ? undefined : NetnsHandle.open(spec.peerNetns);
    try {
      const info = req.vethInfo({ name: spec.peerName, mtu: spec.mtu, mac: spec.peerMac, netnsFd: peerNetns?.fd });
      const link = await this.createLink("create veth link", req.newLinkAttrs(spec, info));
      // The kernel ignores IFLA_IFALIAS when it creates a link: set it right after.
      if (spec.alias === undefined) return link;
      await this.setLink(link.index, { alias: spec.alias });
      return { ...link, alias: spec.alias };
    } finally {
      peerNetns?.close();
    }
  }

  async setLink(index: number, changes: port.LinkChanges): Promise<void> {
    const { vxlan, ...link } = changes;
    if (vxlan !== undefined) {
      // RTM_SETLINK ignores IFLA_LINKINFO; only RTM_NEWLINK (without NLM_F_CREATE) reaches the driver's changelink.
      const attrs = { linkinfo: req.nested(req.vxlanChangeInfo(vxlan)) };
      await this.request("set vxlan", `#${index} ${JSON.stringify(vxlan)}`, (s) =>
        s.newLink({ index: checkIndex(index) }, attrs),
      );
    }
    if (Object.keys(link).length === 0 && vxlan !== undefined) return;
    const { data, attrs } = req.setLinkMessage(index, link);
    await this.request("set link", `#${index} ${JSON.stringify(link)}`, (s) => s.setLink(data, attrs));
  }

  async setHairpin(index: number, on: boolean): Promise<void> {
    const attrs = { linkinfo: req.nested(req.hairpinInfo(on)) };
    await this.request("set hairpin", `${on ? "on" : "off"} for link #${index}`, (s) =>
      s.newLink({ index: checkIndex(index) }, attrs),
    );
  }

  /** Off the event loop: the kernel makes the sender wait for RCU grace periods (blocking-request.ts). */
  async deleteLink(index: number): Promise<void> {
    this.openNetns("delete link", `#${index}`);
    try {
      await deleteLinkBlocking(this.netnsHandle, index);
    } catch (error) {
      if (!isNetlinkErrno(error, ...GONE_ERRNOS)) throw error;
    }
  }

  async listAddresses(index?: number, family?: port.IpFamily): Promise<port.AddressInfo[]> {
    const wanted = checkFamily(family);
    const messages = await this.request("list", listed("addresses", wanted), (s) =>
      s.getAddresses({ family: afOf(wanted) }),
    );
    return messages
      .map(addressFromMessage)
      .filter(notNull)
      .filter((a) => familyOf(a.address) === wanted && (index === undefined || a.index === index));
  }

  async addAddress(address: port.AddressInfo): Promise<void> {
    const { data, attrs } = req.addressMessage(address);
    const object = `${address.address}/${address.prefixLen} on link #${address.index}`;
    await this.request("add address", object, (s) =>
      s.newAddress(data, attrs, { flags: NLM_F_CREATE | NLM_F_REPLACE }),
    );
  }

  async deleteAddress(address: port.AddressInfo): Promise<void> {
    const { data, attrs } = req.addressMessage(address, true);
    await this.remove("delete address", `${address.address}/${address.prefixLen} on link #${address.index}`, (s) =>
      s.delAddress(data, attrs),
    );
  }

  async listRoutes(filter: port.RouteFilter = {}): Promise<port.RouteInfo[]> {
    const table = filter.table ?? req.RT_TABLE_MAIN;
    const family = checkFamily(filter.family);
    const messages = await this.request("list", listed("routes", family), (s) => s.getRoutes({ family: afOf(family) }));
    return messages
      .map(routeFromMessage)
      .filter(notNull)
      .filter(
        (r) =>
          (table === "all" || r.table === table) && (filter.protocol === undefined || r.protocol === filter.protocol),
      )
      .filter((r) => familyOf(r.dst) === family && (filter.oif === undefined || r.oif === filter.oif));
  }

  async replaceRoute(route: port.RouteSpec): Promise<void> {
    const { data, attrs } = req.routeMessage(route, false);
    await this.request("replace route", req.describeRoute(route), (s) =>
      s.newRoute(data, attrs, { flags: NLM_F_CREATE | NLM_F_REPLACE }),
    );
  }

  async deleteRoute(route: port.RouteSpec): Promise<void> {
    const { data, attrs } = req.routeMessage(route, true);
    await this.remove("delete route", req.describeRoute(route), (s) => s.delRoute(data, attrs));
  }

  async listNeighbors(index?: number, family?: port.IpFamily): Promise<port.NeighborInfo[]> {
    const wanted = checkFamily(family);
    const messages = await this.request("list", listed("neighbours", wanted), (s) =>
      s.getNeighbors({ family: afOf(wanted) }),
    );
    return messages
      .map(neighborFromMessage)
      .filter(notNull)
      .filter((n) => familyOf(n.ip) === wanted && (index === undefined || n.index === index));
  }

  async replaceNeighbor(n: port.NeighborSpec): Promise<void> {
    const { data, attrs } = req.neighborMessage(n);
    await this.request("replace neighbour", `${n.ip} on link #${n.index}`, (s) =>
      s.newNeighbor(data, attrs, { flags: NLM_F_CREATE | NLM_F_REPLACE }),
    );
  }

  async deleteNeighbor(n: { index: number; ip: string }): Promise<void> {
    const { data, attrs } = req.neighborMessage(n);
    await this.remove("delete neighbour", `${n.ip} on link #${n.index}`, (s) => s.delNeighbor(data, attrs));
  }

  async listFdb(index?: number): Promise<port.FdbEntry[]> {
    // The legacy FDB dump ignores an ifindex in the ndmsg header, so filtering happens here.
    const messages = await this.request("list", "fdb entries", (s) => s.getNeighbors({ family: AF_BRIDGE }));
    return messages
      .map(fdbFromMessage)
      .filter(notNull)
      .filter((f) => index === undefined || f.index === index);
  }

  async replaceFdb(entry: port.FdbSpec): Promise<void> {
    const { data, attrs } = req.fdbMessage(entry);
    await this.request("replace fdb entry", req.describeFdb(entry), (s) =>
      s.newNeighbor(data, attrs, { flags: NLM_F_CREATE | NLM_F_REPLACE }),
    );
  }

  async deleteFdb(entry: { index: number; mac: string; dst?: string }): Promise<void> {
    const { data, attrs } = req.fdbMessage(entry);
    await this.remove("delete fdb entry", req.describeFdb(entry), (s) => s.delNeighbor(data, attrs));
  }

  // Synchronous underneath (the file must be opened while switched); async only to fit the port.
  // eslint-disable-next-line @typescript-eslint/require-await
  async getSysctl(name: string): Promise<string> {
    return readSysctl(name, this.openNetns("read sysctl", name));
  }

  // eslint-disable-next-line @typescript-eslint/require-await
  async setSysctl(name: string, value: string): Promise<void> {
    writeSysctl(name, value, this.openNetns("write sysctl", name));
  }

  watch(handler: (event: port.KernelEvent) => void): port.Subscription {
    const netns = this.openNetns("watch", "changes");
    try {
      const subscription = new EventSubscription(netns, handler, (s) => this.subscriptions.delete(s));
      this.subscriptions.add(subscription);
      return subscription;
    } catch (error) {
      throw translateError(error, "watch changes in", this.netns ?? "own namespace");
    }
  }

  close(): void {
    if (this.requests.closed) return;
    this.requests.close();
    for (const subscription of this.subscriptions) subscription.close();
    this.netnsHandle?.close();
  }

  /** The namespace to switch into (undefined: our own); fails once the handle is closed. */
  private openNetns(operation: string, object: string): NetnsHandle | undefined {
    if (this.requests.closed) throw translateError(closedError(), operation, object);
    return this.netnsHandle;
  }
}
