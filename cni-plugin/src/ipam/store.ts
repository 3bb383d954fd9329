// The IPAM store port: reservations of single addresses, keyed by address, held under one exclusive lock. The one
// real adapter is file-store.ts (a directory like host-local's); tests use an in-memory one.
import type { Attachment } from "../env.js";

export interface Reservation extends Attachment {
  ip: number;
}

export interface ReservationStore {
  /** Runs `fn` holding the store's exclusive lock (across processes); fails with code 11 when it cannot get it. */
  withLock<T>(fn: () => Promise<T>): Promise<T>;
  /** Every reservation; one whose owner cannot be read comes back with containerId "" (nobody's, GC frees it). */
  list(): Reservation[];
  /** Records the reservation unless the address is taken (then false); all or nothing. */
  reserve(reservation: Reservation): boolean;
  release(ip: number): void;
  lastReserved(): number | undefined;
  setLastReserved(ip: number): void;
}

export function sameAttachment(a: Attachment, b: Attachment): boolean {
  return a.containerId === b.containerId && a.ifname === b.ifname;
}
