// Change notifications on a socket of their own: replies to requests and multicast events never share a socket, so
// a dump in progress cannot swallow an event and an event cannot be mistaken for part of a reply.
import type { RtNetlinkSocket } from "netlink/dist/rt/rt.js";
import type { MessageType } from "netlink/dist/rt/structs.js";
import type { NetlinkMessage } from "netlink/dist/structs.js";
import { openEnum } from "./codec.js";
import type { ChangeAction, KernelEvent, Subscription } from "./kernel.js";
import { withNetns, type NetnsHandle } from "./netns.js";
import { rt, rtnetlink } from "./package.js";
import {
  AF_BRIDGE,
  addressFromMessage,
  fdbFromMessage,
  linkFromMessage,
  neighborFromMessage,
  routeFromMessage,
} from "./parse.js";

// Bursts (a node joining with hundreds of peers) must not overflow the queue; the kernel caps this at rmem_max.
const RECEIVE_BUFFER_BYTES = 4 << 20;
// NEIGH carries every family's neighbours (ARP, NDP) and the FDB; addresses and routes have a group per family.
const GROUPS = [
  rt.MulticastGroups.LINK,
  rt.MulticastGroups.IPV4_IFADDR,
  rt.MulticastGroups.IPV4_ROUTE,
  rt.MulticastGroups.IPV6_IFADDR,
  rt.MulticastGroups.IPV6_ROUTE,
  rt.MulticastGroups.NEIGH,
];

const ACTIONS: ReadonlyMap<number, ChangeAction> = new Map([
  [rt.MessageType.NEWLINK, "new"],
  [rt.MessageType.DELLINK, "del"],
  [rt.MessageType.NEWADDR, "new"],
  [rt.MessageType.DELADDR, "del"],
  [rt.MessageType.NEWROUTE, "new"],
  [rt.MessageType.DELROUTE, "del"],
  [rt.MessageType.NEWNEIGH, "new"],
  [rt.MessageType.DELNEIGH, "del"],
] as const);

/** One notification → at most one event; families other than IPv4, IPv6 (and AF_BRIDGE's FDB) are dropped. */
export function eventFromMessage(message: NetlinkMessage): KernelEvent | undefined {
  const action = ACTIONS.get(message.type);
  if (action === undefined) return undefined;
  const parsed = rt.parseMessage(openEnum<MessageType>(message.type), message.data);
  switch (parsed.kind) {
    case "link": {
      // AF_BRIDGE copies of link notifications only repeat bridge-port state.
      const link = parsed.data.family === AF_BRIDGE ? undefined : linkFromMessage(parsed);
      return link && { type: "link", action, link };
    }
    case "address": {
      const address = addressFromMessage(parsed);
      return address && { type: "address", action, address };
    }
    case "route": {
      const route = routeFromMessage(parsed);
      return route && { type: "route", action, route };
    }
    case "neighbor": {
      if (parsed.data.family === AF_BRIDGE) {
        const fdb = fdbFromMessage(parsed);
        return fdb && { type: "fdb", action, fdb };
      }
      const neighbor = neighborFromMessage(parsed);
      return neighbor && { type: "neighbor", action, neighbor };
    }
    default:
      return undefined;
  }
}

export class EventSubscription implements Subscription {
  private socket: RtNetlinkSocket | undefined;

  constructor(
    netns: NetnsHandle | undefined,
    handler: (event: KernelEvent) => void,
    private readonly onClose: (subscription: EventSubscription) => void,
  ) {
    // ref: a live subscription keeps the process running, like a listening server; close() releases it.
    const options = { ref: true, recvBufferSize: RECEIVE_BUFFER_BYTES, sendBufferSize: 0 };
    const socket =
      netns === undefined
        ? rtnetlink.createRtNetlink(options)
        : withNetns(netns, () => rtnetlink.createRtNetlink(options));
    this.socket = socket;
    try {
      for (const group of GROUPS) socket.addMembership(group);
    } catch (error) {
      socket.socket.close();
      throw error;
    }
    socket.socket.on("message", (messages: NetlinkMessage[]) => {
      for (const message of messages) {
        let event: KernelEvent | undefined;
        try {
          event = eventFromMessage(message);
        } catch (error) {
          event = {
            type: "overrun",
            reason: `unparseable notification: ${error instanceof Error ? error.message : String(error)}`,
          };
        }
        if (event !== undefined) handler(event);
      }
    });
    // ENOBUFS: the kernel dropped notifications because we read too slowly; only a full resync can recover.
    socket.socket.on("error", (error) => {
      handler({
        type: "overrun",
        reason: error.code === "ENOBUFS" ? "notifications were dropped (ENOBUFS)" : error.message,
      });
    });
  }

  close(): void {
    const socket = this.socket;
    if (socket === undefined) return;
    this.socket = undefined;
    socket.socket.close();
    this.onClose(this);
  }
}
