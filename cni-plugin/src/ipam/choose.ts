// Which address to hand out next (pure), per IP family. Like the reference host-local: round-robin after the last
// one reserved, never the network address (for IPv6 the subnet-router anycast address), the gateway or (IPv4) the
// broadcast address.
import { containsIp, lastAddress, type Cidr } from "#lib/ipv4.js";
import { containsIp6, sizeOf6, type Cidr6 } from "#lib/ipv6.js";

export interface Lease {
  /** The node's subnet, canonical (172.30.5.0/24). */
  subnet: Cidr;
  /** The bridge's address in it (172.30.5.1). */
  gateway: number;
}

export interface Lease6 {
  /** The node's IPv6 subnet, canonical (fd30:0:0:5::/64). */
  subnet: Cidr6;
  /** The bridge's IPv6 address in it (fd30:0:0:5::1). */
  gateway: bigint;
}

/** The first and last address a pod may get; undefined when the subnet has none (/31, /32). */
export function hostRange(subnet: Cidr): { first: number; last: number } | undefined {
  if (subnet.prefixLen > 30) return undefined;
  return { first: subnet.ip + 1, last: lastAddress(subnet) - 1 };
}

export function isAssignable(lease: Lease, ip: number): boolean {
  const range = hostRange(lease.subnet);
  return range !== undefined && ip >= range.first && ip <= range.last && ip !== lease.gateway;
}

/** The next free address after `last` (wrapping), or undefined when every assignable address is taken. */
export function chooseAddress(lease: Lease, taken: ReadonlySet<number>, last: number | undefined): number | undefined {
  const range = hostRange(lease.subnet);
  if (range === undefined) return undefined;
  const size = range.last - range.first + 1;
  const start =
    last !== undefined && containsIp(lease.subnet, last) && last >= range.first && last <= range.last
      ? last - range.first + 1
      : 0;
  for (let step = 0; step < size; step += 1) {
    const ip = range.first + ((start + step) % size);
    if (ip !== lease.gateway && !taken.has(ip)) return ip;
  }
  return undefined;
}

/**
 * IPv6: everything after the subnet-router anycast address (the subnet's first) up to its last (IPv6 has no
 * broadcast); undefined when that leaves no room for a gateway and a pod (/127, /128).
 */
export function hostRange6(subnet: Cidr6): { first: bigint; last: bigint } | undefined {
  if (subnet.prefixLen > 126) return undefined;
  return { first: subnet.ip + 1n, last: subnet.ip + sizeOf6(subnet.prefixLen) - 1n };
}

export function isAssignable6(lease: Lease6, ip: bigint): boolean {
  const range = hostRange6(lease.subnet);
  return range !== undefined && ip >= range.first && ip <= range.last && ip !== lease.gateway;
}

/**
 * The next free IPv6 address after `last` (wrapping), starting after the gateway when nothing was handed out yet;
 * undefined when every assignable address is taken. A /64 is never searched whole: among `taken.size + 2`
 * consecutive candidates at most `taken.size` are taken and one is the gateway, so one of them is free.
 */
export function chooseAddress6(
  lease: Lease6,
  taken: ReadonlySet<bigint>,
  last: bigint | undefined,
): bigint | undefined {
  const range = hostRange6(lease.subnet);
  if (range === undefined) return undefined;
  const size = range.last - range.first + 1n;
  const after = (ip: bigint): bigint => (ip >= range.first && ip <= range.last ? ip - range.first + 1n : 0n);
  const start = last !== undefined && containsIp6(lease.subnet, last) ? after(last) : after(lease.gateway);
  const bound = BigInt(taken.size) + 2n;
  const steps = size < bound ? size : bound;
  for (let step = 0n; step < steps; step += 1n) {
    const ip = range.first + ((start + step) % size);
    if (ip !== lease.gateway && !taken.has(ip)) return ip;
  }
  return undefined;
}
