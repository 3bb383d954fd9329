// Address allocation over the store port: the same address again for the same attachment, re-validation against
// the current lease (an address outside the node's subnet is stale: the lease changed), a clear error when full.
import { formatCidr, formatIpv4 } from "../../../lib/src/ipv4.js";
import { CniCode, CniError } from "../cni-error.js";
import type { Attachment } from "../env.js";
import { chooseAddress, isAssignable, type Lease } from "./choose.js";
import { sameAttachment, type Reservation, type ReservationStore } from "./store.js";

export async function allocate(store: ReservationStore, lease: Lease, attachment: Attachment): Promise<number> {
  return await store.withLock(() => {
    const all = store.list();
    let kept: number | undefined;
    for (const r of all.filter((r) => sameAttachment(r, attachment))) {
      if (kept === undefined && isAssignable(lease, r.ip)) kept = r.ip;
      else store.release(r.ip); // stale (old lease) or a duplicate
    }
    if (kept !== undefined) return Promise.resolve(kept);
    const taken = new Set(all.map((r) => r.ip));
    let last = store.lastReserved();
    for (;;) {
      const ip = chooseAddress(lease, taken, last);
      if (ip === undefined) {
        throw new CniError(
          CniCode.SUBNET_FULL,
          `no free address left in ${formatCidr(lease.subnet)} (${taken.size} reserved)`,
        );
      }
      if (store.reserve({ ip, ...attachment })) {
        store.setLastReserved(ip);
        return Promise.resolve(ip);
      }
      taken.add(ip); // a file we could not list (written meanwhile): skip it
      last = ip;
    }
  });
}

/** Frees every address of the attachment; nothing reserved is fine. Returns what was freed. */
export async function release(store: ReservationStore, attachment: Attachment): Promise<number[]> {
  return await store.withLock(() => {
    const mine = store.list().filter((r) => sameAttachment(r, attachment));
    for (const r of mine) store.release(r.ip);
    return Promise.resolve(mine.map((r) => r.ip));
  });
}

/** The reservations of an attachment (for CHECK), without changing anything. */
export async function reservationsOf(store: ReservationStore, attachment: Attachment): Promise<Reservation[]> {
  return await store.withLock(() => Promise.resolve(store.list().filter((r) => sameAttachment(r, attachment))));
}

/** GC: frees every reservation whose attachment is not valid; returns the freed ones. */
export async function releaseAllExcept(store: ReservationStore, valid: readonly Attachment[]): Promise<Reservation[]> {
  const keep = new Set(valid.map((a) => `${a.containerId}\n${a.ifname}`));
  return await store.withLock(() => {
    const freed = store.list().filter((r) => !keep.has(`${r.containerId}\n${r.ifname}`));
    for (const r of freed) store.release(r.ip);
    return Promise.resolve(freed);
  });
}

export function describeReservation(r: Reservation): string {
  return `${formatIpv4(r.ip)} for ${r.containerId}/${r.ifname}`;
}
