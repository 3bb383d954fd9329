// Choosing this node's subnet: a pure function of the listing, so every rule is unit-testable without etcd.
//  1. A lease naming our PublicIP (a live lease from a previous run, or a reservation) is ours again.
//  2. Else the preferred subnet (remembered in subnet.env, or the one just lost) when it is free.
//  3. Else a random one among the first RANDOM_WINDOW free subnets: concurrent nodes rarely collide. Each lost
//     race doubles the window (up to 8×), so a crowd of nodes starting together spreads out instead of colliding
//     again on the same few subnets.
import { containsIp, isCanonical, sizeOf, type Cidr } from "../../../lib/src/ipv4.js";
import { poolSize, subnetInPool, type NetworkConfig } from "../config/network-config.js";
import type { StoredLease } from "./registry.js";

/** How many free subnets the random choice spreads over (flannel uses 100). */
export const RANDOM_WINDOW = 100;

export interface AllocationInput {
  readonly config: NetworkConfig;
  readonly leases: readonly StoredLease[];
  readonly publicIp: string;
  readonly preferred: Cidr | undefined;
  /** Subnets (uint32 address) we just lost a creation race for: do not pick them again in this round. */
  readonly exclude?: ReadonlySet<number>;
  /** Races lost so far in this round: widens the random window. */
  readonly racesLost?: number;
  readonly random: () => number;
}

export type Allocation =
  | { readonly kind: "reuse"; readonly lease: StoredLease; readonly reserved: boolean }
  | { readonly kind: "create"; readonly subnet: Cidr; readonly source: "preferred" | "random" }
  | { readonly kind: "exhausted"; readonly poolSize: number; readonly taken: number };

/** A lease we may use as our own: it names our IP and fits the current network (reservations may sit outside Min/Max). */
export function isUsableOwnLease(config: NetworkConfig, lease: StoredLease, publicIp: string): boolean {
  return (
    lease.attrs.ok &&
    lease.attrs.value.publicIp === publicIp &&
    lease.subnet.prefixLen === config.subnetLen &&
    isCanonical(lease.subnet) &&
    containsIp(config.network, lease.subnet.ip)
  );
}

export function chooseSubnet(input: AllocationInput): Allocation {
  const { config, leases, publicIp, preferred } = input;

  const own = leases.filter((lease) => isUsableOwnLease(config, lease, publicIp));
  if (own.length > 0) {
    // A reservation wins over a TTL lease; then the preferred subnet; then the first.
    const pick =
      own.find((lease) => lease.leaseId === undefined) ??
      own.find((lease) => preferred !== undefined && lease.subnet.ip === preferred.ip) ??
      own[0];
    if (pick !== undefined) return { kind: "reuse", lease: pick, reserved: pick.leaseId === undefined };
  }

  const taken = new Set<number>();
  for (const lease of leases) {
    if (lease.subnet.prefixLen === config.subnetLen) taken.add(lease.subnet.ip);
    else markOverlaps(taken, config, lease.subnet);
  }
  const excluded = input.exclude ?? new Set<number>();
  const isFree = (ip: number): boolean => !taken.has(ip) && !excluded.has(ip);

  if (preferred !== undefined && subnetInPool(config, preferred) && isFree(preferred.ip)) {
    return { kind: "create", subnet: preferred, source: "preferred" };
  }

  const step = sizeOf(config.subnetLen);
  const candidates: number[] = [];
  const window = RANDOM_WINDOW * 2 ** Math.min(3, input.racesLost ?? 0);
  for (let ip = config.subnetMin; ip <= config.subnetMax && candidates.length < window; ip += step) {
    if (isFree(ip)) candidates.push(ip);
  }
  if (candidates.length === 0) {
    let inPool = 0;
    for (const ip of taken) if (ip >= config.subnetMin && ip <= config.subnetMax) inPool += 1;
    return { kind: "exhausted", poolSize: poolSize(config), taken: inPool };
  }
  const index = Math.min(candidates.length - 1, Math.floor(input.random() * candidates.length));
  return {
    kind: "create",
    subnet: { ip: candidates[index] ?? config.subnetMin, prefixLen: config.subnetLen },
    source: "random",
  };
}

/** A key of another length (left from an older config) blocks every pool subnet it overlaps. */
function markOverlaps(taken: Set<number>, config: NetworkConfig, subnet: Cidr): void {
  const step = sizeOf(config.subnetLen);
  if (subnet.prefixLen > config.subnetLen) {
    taken.add((subnet.ip - (subnet.ip % step)) >>> 0);
    return;
  }
  const end = subnet.ip + sizeOf(subnet.prefixLen);
  for (let ip = subnet.ip; ip < end; ip += step) taken.add(ip);
}
