// The one real adapter of the Kernel port, over the `netlink` package's rtnetlink socket. Its socket is created
// synchronously on the calling thread, so `withNetns` can place it inside another network namespace (a pod's).
import type { LinkAttrs } from "netlink/dist/rt/ifla.js";
import type { RtNetlinkSocket } from "netlink/dist/rt/rt.js";
import { checkIndex, checkLinkName } from "./codec.js";
import { GONE_ERRNOS, NetlinkError, isNetlinkErrno, translateError } from "./errors.js";
import type * as port from "./kernel.js";
import { NetnsHandle, withNetns } from "./netns.js";
import { ifla, rtnetlink } from "./package.js";
import {
  AF_BRIDGE,
  AF_INET,
  addressFromMessage,
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
 * Opens a handle on the kernel's network state of `netns` (a path like /run/netns/x or /proc/PID/ns/net, or a name
 * under /run/netns), or of the caller's own namespace. Throws code NOT_FOUND when the namespace does not exist.
 */
export function openKernel(options: { netns?: string } = {}): port.Kernel {
  const netns = options.netns === undefined ? undefined : NetnsHandle.open(options.netns);
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

class RtnetlinkKernel implements port.Kernel {
  readonly netns: string | undefined;
  private readonly requests: RequestQueue;
  private readonly subscriptions = new Set<EventSubscription>();

  constructor(
    socket: RtNetlinkSocket,
    private readonly netnsHandle: NetnsHandle | undefined,
  ) {
    this.requests = new RequestQueue(socket);
    this.netns = netnsHandle?.path;
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
      return await this.createLink("create veth link", req.newLinkAttrs(spec, info));
    } finally {
      peerNetns?.close();
    }
  }

  async setLink(index: number, changes: port.LinkChanges): Promise<void> {
    const { data, attrs } = req.setLinkMessage(index, changes);
    await this.request("set link", `#${index} ${JSON.stringify(changes)}`, (s) => s.setLink(data, attrs));
  }

  async setHairpin(index: number, on: boolean): Promise<void> {
    const attrs = { linkinfo: req.nested(req.hairpinInfo(on)) };
    await this.request("set hairpin", `${on ? "on" : "off"} for link #${index}`, (s) =>
      s.newLink({ index: checkIndex(index) }, attrs),
    );
  }

  async deleteLink(index: number): Promise<void> {
    await this.remove("delete link", `#${index}`, (s) => s.delLink({ index: checkIndex(index) }));
  }

  async listAddresses(index?: number): Promise<port.AddressInfo[]> {
    const messages = await this.request("list", "addresses", (s) => s.getAddresses({ family: AF_INET }));
    return messages
      .map(addressFromMessage)
      .filter(notNull)
      .filter((a) => index === undefined || a.index === index);
  }

  async addAddress(address: port.AddressInfo): Promise<void> {
    const { data, attrs } = req.addressMessage(address);
    const object = `${address.address}/${address.prefixLen} on link #${address.index}`;
    await this.request("add address", object, (s) =>
      s.newAddress(data, attrs, { flags: NLM_F_CREATE | NLM_F_REPLACE }),
    );
  }

  async deleteAddress(address: port.AddressInfo): Promise<void> {
    const { data, attrs } = req.addressMessage(address);
    await this.remove("delete address", `${address.address}/${address.prefixLen} on link #${address.index}`, (s) =>
      s.delAddress(data, attrs),
    );
  }

  async listRoutes(filter: port.RouteFilter = {}): Promise<port.RouteInfo[]> {
    const table = filter.table ?? req.RT_TABLE_MAIN;
    const messages = await this.request("list", "routes", (s) => s.getRoutes({ family: AF_INET }));
    return messages
      .map(routeFromMessage)
      .filter(notNull)
      .filter(
        (r) =>
          (table === "all" || r.table === table) && (filter.protocol === undefined || r.protocol === filter.protocol),
      )
      .filter((r) => filter.oif === undefined || r.oif === filter.oif);
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

  async listNeighbors(index?: number): Promise<port.NeighborInfo[]> {
    const messages = await this.request("list", "neighbours", (s) => s.getNeighbors({ family: AF_INET }));
    return messages
      .map(neighborFromMessage)
      .filter(notNull)
      .filter((n) => index === undefined || n.index === index);
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
