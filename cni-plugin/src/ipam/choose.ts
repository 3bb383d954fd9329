// Which address to hand out next (pure). Like the reference host-local: round-robin after the last one reserved,
// never the network, the gateway or the broadcast address.
import { containsIp, lastAddress, type Cidr } from "../../../lib/src/ipv4.js";

export interface Lease {
  /** The node's subnet, canonical (172.30.5.0/24). */
  subnet: Cidr;
  /** The bridge's address in it (172.30.5.1). */
  gateway: number;
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
