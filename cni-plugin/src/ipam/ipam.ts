// Address allocation over the store port, one address per IP family of the lease, all under one lock and all or
// nothing: the same addresses again for the same attachment, re-validation against the current lease (an address
// outside the node's subnet, or of a family the lease no longer has, is stale: the lease changed), a clear error
// when a subnet is full.
import { containsIp, formatCidr, formatIpv4 } from "#lib/ipv4.js";
import { containsIp6, formatCidr6, formatIpv6, parseIpv6 } from "#lib/ipv6.js";
import type { IpFamily } from "#lib/netlink/kernel.js";
import { CniCode, CniError } from "../cni-error.js";
import type { Attachment } from "../env.js";
import type { RequestedIp } from "../requested.js";
import { chooseAddress, chooseAddress6, isAssignable, isAssignable6, type Lease, type Lease6 } from "./choose.js";
import { sameAttachment, type Address, type Reservation, type ReservationStore } from "./store.js";

/** The node's subnet per family: at least one. */
export interface Leases {
  readonly ipv4?: Lease | undefined;
  readonly ipv6?: Lease6 | undefined;
}

/** What ADD reserved in one family: the address, whether this ADD made it, and older ones to free once it succeeded. */
export interface FamilyAllocation<A extends Address> {
  readonly ip: A;
  /** False when the attachment already held this address (a repeated ADD): undoing must keep it. */
  readonly fresh: boolean;
  /** The attachment's other valid addresses of the family (a repeated ADD asking for another IP): freed by commit(). */
  readonly superseded: readonly A[];
}

/** One address per family of the lease (IPv6 as its RFC 5952 text, as the store keeps it). */
export interface Allocation {
  readonly ipv4?: FamilyAllocation<number>;
  readonly ipv6?: FamilyAllocation<string>;
}

/** What allocation needs to know of a family: written once, for IPv4 (numbers) and IPv6 (RFC 5952 text). */
interface Family<A extends Address, L> {
  readonly family: IpFamily;
  is(ip: Address): ip is A;
  lease(leases: Leases): L | undefined;
  contains(lease: L, ip: A): boolean;
  isAssignable(lease: L, ip: A): boolean;
  choose(lease: L, taken: ReadonlySet<A>, last: A | undefined): A | undefined;
  format(ip: A): string;
  formatSubnet(lease: L): string;
}

const IPV4: Family<number, Lease> = {
  family: 4,
  is: (ip): ip is number => typeof ip === "number",
  lease: (leases) => leases.ipv4,
  contains: (lease, ip) => containsIp(lease.subnet, ip),
  isAssignable,
  choose: chooseAddress,
  format: formatIpv4,
  formatSubnet: (lease) => formatCidr(lease.subnet),
};

/** The arithmetic is on bigints (choose.ts); the store's text is parsed only here, on a network with IPv6. */
const IPV6: Family<string, Lease6> = {
  family: 6,
  is: (ip): ip is string => typeof ip === "string",
  lease: (leases) => leases.ipv6,
  contains: (lease, ip) => {
    const n = parseIpv6(ip);
    return n !== undefined && containsIp6(lease.subnet, n);
  },
  isAssignable: (lease, ip) => {
    const n = parseIpv6(ip);
    return n !== undefined && isAssignable6(lease, n);
  },
  choose: (lease, taken, last) => {
    const numbers = new Set<bigint>();
    for (const text of taken) {
      const n = parseIpv6(text);
      if (n !== undefined) numbers.add(n);
    }
    const ip = chooseAddress6(lease, numbers, last === undefined ? undefined : parseIpv6(last));
    return ip === undefined ? undefined : formatIpv6(ip);
  },
  format: (ip) => ip,
  formatSubnet: (lease) => formatCidr6(lease.subnet),
};

/** "this node's lease is 172.30.5.0/24, gateway 172.30.5.1; fd30:0:0:5::/64, gateway fd30:0:0:5::1" */
function describeLeases(leases: Leases): string {
  const parts: string[] = [];
  if (leases.ipv4 !== undefined)
    parts.push(`${IPV4.formatSubnet(leases.ipv4)}, gateway ${formatIpv4(leases.ipv4.gateway)}`);
  if (leases.ipv6 !== undefined)
    parts.push(`${IPV6.formatSubnet(leases.ipv6)}, gateway ${formatIpv6(leases.ipv6.gateway)}`);
  return `this node's lease is ${parts.join("; ")}`;
}

function unavailable(leases: Leases, message: string): CniError {
  return new CniError(CniCode.ADDRESS_UNAVAILABLE, `${message} (${describeLeases(leases)})`);
}

/** A requested address must be in its family's subnet, assignable, and not someone else's; else nothing changes. */
function checkRequest<A extends Address, L>(
  f: Family<A, L>,
  leases: Leases,
  requested: RequestedIp,
  all: readonly Reservation[],
  attachment: Attachment,
): void {
  const lease = f.lease(leases);
  const ip = requested.ip;
  const named = `requested IP ${requested.text} (${requested.from})`;
  if (lease === undefined || ip === undefined || !f.is(ip) || !f.contains(lease, ip))
    throw unavailable(
      leases,
      `${named} is outside this node's lease${lease === undefined ? `, which has no IPv${f.family} subnet` : ""}`,
    );
  if (!f.isAssignable(lease, ip))
    throw unavailable(leases, `${named} is the network, gateway or broadcast address of this node's lease`);
  const holder = all.find((r) => r.ip === ip);
  if (holder !== undefined && !sameAttachment(holder, attachment))
    throw unavailable(leases, `${named} is already reserved for ${holder.containerId}/${holder.ifname}`);
}

/** One family's address for the attachment, `own` being what it already validly holds (under the lock). */
function allocateFamily<A extends Address, L>(
  f: Family<A, L>,
  lease: L,
  leases: Leases,
  store: ReservationStore,
  attachment: Attachment,
  context: { all: readonly Reservation[]; own: readonly A[]; requested: A | undefined },
): FamilyAllocation<A> {
  const { own } = context;
  const wanted = context.requested ?? own[0];
  if (wanted !== undefined && own.includes(wanted))
    return { ip: wanted, fresh: false, superseded: own.filter((ip) => ip !== wanted) };
  if (wanted !== undefined) {
    if (!store.reserve({ ip: wanted, ...attachment }))
      throw unavailable(leases, `requested IP ${f.format(wanted)} was reserved by another attachment meanwhile`);
    return { ip: wanted, fresh: true, superseded: own };
  }
  const taken = new Set<A>();
  for (const r of context.all) if (f.is(r.ip)) taken.add(r.ip);
  const stored = store.lastReserved(f.family);
  let last = stored !== undefined && f.is(stored) ? stored : undefined;
  for (;;) {
    const ip = f.choose(lease, taken, last);
    if (ip === undefined) {
      throw new CniError(
        CniCode.SUBNET_FULL,
        `no free address left in ${f.formatSubnet(lease)} (${taken.size} reserved)`,
      );
    }
    if (store.reserve({ ip, ...attachment })) {
      store.setLastReserved(ip);
      return { ip, fresh: true, superseded: [] };
    }
    taken.add(ip); // a file we could not list (written meanwhile): skip it
    last = ip;
  }
}

/**
 * Reserves one address per family of the lease for the attachment: the requested one, or the one it already holds,
 * or the next free one. The attachment's reservations outside the lease (an older lease) are freed; a requested
 * address outside its family's subnet or held by another attachment is refused, changing nothing. A failure in one
 * family undoes what the others reserved: both or neither.
 */
export async function allocate(
  store: ReservationStore,
  leases: Leases,
  attachment: Attachment,
  requested: readonly RequestedIp[] = [],
): Promise<Allocation> {
  return await store.withLock((): Promise<Allocation> => {
    const all = store.list();
    for (const r of requested) {
      if (r.family === 4) checkRequest(IPV4, leases, r, all, attachment);
      else checkRequest(IPV6, leases, r, all, attachment);
    }
    const own4: number[] = [];
    const own6: string[] = [];
    for (const { ip } of all.filter((r) => sameAttachment(r, attachment))) {
      if (!isCurrent(leases, ip))
        store.release(ip); // stale (an older lease)
      else if (IPV4.is(ip)) own4.push(ip);
      else own6.push(ip);
    }
    const wanted = (family: IpFamily): RequestedIp["ip"] => requested.find((r) => r.family === family)?.ip;
    const made: Address[] = [];
    try {
      let ipv4: FamilyAllocation<number> | undefined;
      let ipv6: FamilyAllocation<string> | undefined;
      if (leases.ipv4 !== undefined) {
        const ip = wanted(4);
        ipv4 = allocateFamily(IPV4, leases.ipv4, leases, store, attachment, {
          all,
          own: own4,
          requested: ip !== undefined && IPV4.is(ip) ? ip : undefined,
        });
        if (ipv4.fresh) made.push(ipv4.ip);
      }
      if (leases.ipv6 !== undefined) {
        const ip = wanted(6);
        ipv6 = allocateFamily(IPV6, leases.ipv6, leases, store, attachment, {
          all,
          own: own6,
          requested: ip !== undefined && IPV6.is(ip) ? ip : undefined,
        });
      }
      return Promise.resolve({
        ...(ipv4 === undefined ? {} : { ipv4 }),
        ...(ipv6 === undefined ? {} : { ipv6 }),
      });
    } catch (error) {
      for (const ip of made) store.release(ip);
      throw error;
    }
  });
}

function familyAllocations(allocation: Allocation): FamilyAllocation<Address>[] {
  return [allocation.ipv4, allocation.ipv6].filter((a) => a !== undefined);
}

/** After a successful ADD: frees the addresses the new ones replaced. */
export async function commit(store: ReservationStore, allocation: Allocation): Promise<void> {
  const superseded = familyAllocations(allocation).flatMap((a) => a.superseded);
  if (superseded.length === 0) return;
  await store.withLock(() => {
    for (const ip of superseded) store.release(ip);
    return Promise.resolve();
  });
}

/** After a failed ADD: frees what this ADD reserved, keeps what the attachment held before. */
export async function undo(store: ReservationStore, allocation: Allocation): Promise<void> {
  const fresh = familyAllocations(allocation).filter((a) => a.fresh);
  if (fresh.length === 0) return;
  await store.withLock(() => {
    for (const a of fresh) store.release(a.ip);
    return Promise.resolve();
  });
}

/** Frees every address of the attachment (of every family); nothing reserved is fine. Returns what was freed. */
export async function release(store: ReservationStore, attachment: Attachment): Promise<Address[]> {
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

/** GC: frees every reservation (of every family) whose attachment is not valid; returns the freed ones. */
export async function releaseAllExcept(store: ReservationStore, valid: readonly Attachment[]): Promise<Reservation[]> {
  const keep = new Set(valid.map((a) => `${a.containerId}\n${a.ifname}`));
  return await store.withLock(() => {
    const freed = store.list().filter((r) => !keep.has(`${r.containerId}\n${r.ifname}`));
    for (const r of freed) store.release(r.ip);
    return Promise.resolve(freed);
  });
}

/**
 * Whether a reservation is still good under the lease: in its family's subnet and assignable (ADD, STATUS, CHECK).
 * An IPv6 one on a lease without IPv6 is stale without being parsed.
 */
export function isCurrent(leases: Leases, ip: Address): boolean {
  if (IPV4.is(ip)) return leases.ipv4 !== undefined && isAssignable(leases.ipv4, ip);
  return leases.ipv6 !== undefined && IPV6.isAssignable(leases.ipv6, ip);
}
