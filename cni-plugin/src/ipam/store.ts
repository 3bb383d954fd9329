// The IPAM store port: reservations of single addresses, keyed by address, held under one exclusive lock. The one
// real adapter is file-store.ts (a directory like host-local's); tests use an in-memory one.
import { formatIpv4 } from "#lib/ipv4.js";
import type { IpFamily } from "#lib/netlink/kernel.js";
import type { Attachment } from "../env.js";

/**
 * An address as the store keeps it, its type telling the family: IPv4 as a uint32 number, IPv6 as its RFC 5952 text
 * (canonical, so equal addresses are equal strings). The store never parses IPv6: the parser costs ~25 ms to load
 * (decision 0003), and DEL, GC and an IPv4-only network never need it, even with IPv6 reservations left over.
 */
export type Address = number | string;

export interface Reservation extends Attachment {
  ip: Address;
}

export interface ReservationStore {
  /** Runs `fn` holding the store's exclusive lock (across processes); fails with code 11 when it cannot get it. */
  withLock<T>(fn: () => Promise<T>): Promise<T>;
  /** Every reservation; one whose owner cannot be read comes back with containerId "" (nobody's, GC frees it). */
  list(): Reservation[];
  /** Records the reservation unless the address is taken (then false); all or nothing. */
  reserve(reservation: Reservation): boolean;
  release(ip: Address): void;
  /** The family's last address handed out (round-robin continues after it). */
  lastReserved(family: IpFamily): Address | undefined;
  setLastReserved(ip: Address): void;
}

export function sameAttachment(a: Attachment, b: Attachment): boolean {
  return a.containerId === b.containerId && a.ifname === b.ifname;
}

export function familyOfAddress(ip: Address): IpFamily {
  return typeof ip === "string" ? 6 : 4;
}

/** Dotted IPv4, or IPv6 in RFC 5952 form (what the store's file names and the kernel use). */
export function formatAddress(ip: Address): string {
  return typeof ip === "string" ? ip : formatIpv4(ip);
}
