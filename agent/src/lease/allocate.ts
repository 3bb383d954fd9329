// Choosing this node's subnet: a pure function of the listing, so every rule is unit-testable without etcd.
//  1. A lease naming our PublicIP (a live lease from a previous run, or a reservation) is ours again.
//  2. Else the preferred subnet (remembered in subnet.env, or the one just lost) when it is free — or when its key
//     holds a value nobody can decode (our own key overwritten with garbage): that key is taken back in a
//     transaction on its revision, so the node keeps the addresses its pods have.
//  3. Else a random one among the first RANDOM_WINDOW free subnets: concurrent nodes rarely collide. Each lost
//     race doubles the window (up to 8×), so a crowd of nodes starting together spreads out instead of colliding
//     again on the same few subnets.
import { containsIp, isCanonical, sameCidr, sizeOf, type Cidr } from "#lib/ipv4.js";
import { containsCidr6, isCanonical6, sizeOf6, type Cidr6 } from "#lib/ipv6.js";
import { pool6Size, poolSize, subnet6InPool, subnetInPool, type NetworkConfig } from "../config/network-config.js";
import type { StoredLease } from "./registry.js";

/** How many free subnets the random choice spreads over (flannel uses 100). */
export const RANDOM_WINDOW = 100;

export interface AllocationInput {
  readonly config: NetworkConfig;
  readonly leases: readonly StoredLease[];
  readonly publicIp: string;
  readonly preferred: Cidr | undefined;
  /** The IPv6 subnet to prefer (an IPv6-only network's choice). */
  readonly preferred6?: Cidr6 | undefined;
  /** Subnets (uint32 address) we just lost a creation race for: do not pick them again in this round. */
  readonly exclude?: ReadonlySet<number>;
  /** The same for IPv6 subnets on an IPv6-only network. */
  readonly exclude6?: ReadonlySet<bigint>;
  /** Races lost so far in this round: widens the random window. */
  readonly racesLost?: number;
  readonly random: () => number;
}

export type Allocation =
  | { readonly kind: "reuse"; readonly lease: StoredLease; readonly reserved: boolean }
  | {
      readonly kind: "create";
      readonly subnet: Cidr;
      /** Chosen with the IPv4 subnet on an IPv6-only network; else the keeper picks it (chooseSubnet6). */
      readonly subnet6?: Cidr6;
      readonly source: "preferred" | "random";
    }
  | { readonly kind: "reclaim"; readonly lease: StoredLease }
  | { readonly kind: "exhausted"; readonly poolSize: number; readonly taken: number };

/** A lease we may use as our own: it names our IP and fits the current network (reservations may sit outside Min/Max). */
export function isUsableOwnLease(config: NetworkConfig, lease: StoredLease, publicIp: string): boolean {
  return (
    lease.attrs.ok &&
    lease.attrs.value.publicIp === publicIp &&
    // A key of the other shape (dual-stack on an IPv4-only network, or the reverse) is released as stale.
    fitsIpv6(config, lease.subnet6) &&
    (config.enableIPv4
      ? lease.subnet.prefixLen === config.subnetLen &&
        isCanonical(lease.subnet) &&
        containsIp(config.network, lease.subnet.ip)
      : sameCidr(lease.subnet, NO_SUBNET))
  );
}

const NO_SUBNET: Cidr = { ip: 0, prefixLen: 0 };

export function chooseSubnet(input: AllocationInput): Allocation {
  const { config, leases, publicIp, preferred } = input;
  if (!config.enableIPv4) return chooseIpv6Only(input);

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

  if (preferred !== undefined && subnetInPool(config, preferred) && !excluded.has(preferred.ip)) {
    if (!taken.has(preferred.ip)) return { kind: "create", subnet: preferred, source: "preferred" };
    const garbage = leases.find(
      (lease) => sameCidr(lease.subnet, preferred) && !lease.attrs.ok && fitsIpv6(config, lease.subnet6),
    );
    if (garbage !== undefined) return { kind: "reclaim", lease: garbage };
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

/**
 * An IPv6-only network (keys "0.0.0.0-0&<subnet6>"): the same rules on the IPv6 pool — our lease again, the
 * preferred subnet when free or holding garbage, else a random one of the first free ones.
 */
function chooseIpv6Only(input: AllocationInput): Allocation {
  const { config, leases, publicIp, preferred6 } = input;
  const pool = config.ipv6;
  if (pool === undefined) return { kind: "exhausted", poolSize: 0, taken: 0 };
  const own = leases.filter((lease) => isUsableOwnLease(config, lease, publicIp));
  const pick = own.find((lease) => lease.leaseId === undefined) ?? own[0];
  if (pick !== undefined) return { kind: "reuse", lease: pick, reserved: pick.leaseId === undefined };
  const taken = new Set<bigint>();
  for (const lease of leases) if (lease.subnet6 !== undefined) taken.add(lease.subnet6.ip);
  const excluded = input.exclude6 ?? new Set<bigint>();
  if (preferred6 !== undefined && subnet6InPool(pool, preferred6) && !excluded.has(preferred6.ip)) {
    if (!taken.has(preferred6.ip))
      return { kind: "create", subnet: NO_SUBNET, subnet6: preferred6, source: "preferred" };
    const garbage = leases.find(
      (lease) => lease.subnet6 !== undefined && lease.subnet6.ip === preferred6.ip && !lease.attrs.ok,
    );
    if (garbage !== undefined) return { kind: "reclaim", lease: garbage };
  }
  const step = sizeOf6(pool.subnetLen);
  const window = RANDOM_WINDOW * 2 ** Math.min(3, input.racesLost ?? 0);
  const candidates: bigint[] = [];
  let ip = pool.subnetMin;
  for (let i = 0; i < MAX_IPV6_SCAN && ip <= pool.subnetMax && candidates.length < window; i++, ip += step)
    if (!taken.has(ip) && !excluded.has(ip)) candidates.push(ip);
  if (candidates.length === 0)
    return {
      kind: "exhausted",
      poolSize: pool6Size(pool),
      taken: [...taken].filter((t) => t >= pool.subnetMin && t <= pool.subnetMax).length,
    };
  const index = Math.min(candidates.length - 1, Math.floor(input.random() * candidates.length));
  return {
    kind: "create",
    subnet: NO_SUBNET,
    subnet6: { ip: candidates[index] ?? pool.subnetMin, prefixLen: pool.subnetLen },
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

/** A key's IPv6 half is what the network asks: none without IPv6, one of IPv6SubnetLen inside IPv6Network with. */
function fitsIpv6(config: NetworkConfig, subnet6: Cidr6 | undefined): boolean {
  const pool = config.ipv6;
  if (pool === undefined || subnet6 === undefined) return pool === undefined && subnet6 === undefined;
  return subnet6.prefixLen === pool.subnetLen && isCanonical6(subnet6) && containsCidr6(pool.network, subnet6);
}

/** How many IPv6 subnets the search below looks at before calling the pool full (pools of /64s can be 2^60 long). */
export const MAX_IPV6_SCAN = 65_536;

/**
 * The IPv6 half for a new dual-stack key with IPv4 subnet `subnet`: the remembered one when free, else the one at
 * the same place in the IPv6 pool as `subnet` in the IPv4 pool — so nodes that agree on the IPv4 subnet (which the
 * key's transaction settles) agree on the IPv6 one too — else the first free one. Undefined: none free.
 */
export function chooseSubnet6(
  config: NetworkConfig,
  leases: readonly StoredLease[],
  subnet: Cidr,
  preferred: Cidr6 | undefined,
): Cidr6 | undefined {
  const pool = config.ipv6;
  if (pool === undefined) return undefined;
  const taken = new Set<bigint>();
  for (const lease of leases)
    if (lease.subnet6 !== undefined && !sameCidr(lease.subnet, subnet)) taken.add(lease.subnet6.ip);
  const free = (ip: bigint): boolean => !taken.has(ip) && ip >= pool.subnetMin && ip <= pool.subnetMax;
  if (preferred !== undefined && subnet6InPool(pool, preferred) && free(preferred.ip)) return preferred;
  const step = sizeOf6(pool.subnetLen);
  const index = BigInt(Math.max(0, (subnet.ip - config.subnetMin) / sizeOf(config.subnetLen)));
  const derived = pool.subnetMin + index * step;
  if (free(derived)) return { ip: derived, prefixLen: pool.subnetLen };
  let ip = pool.subnetMin;
  for (let i = 0; i < MAX_IPV6_SCAN && ip <= pool.subnetMax; i++, ip += step)
    if (free(ip)) return { ip, prefixLen: pool.subnetLen };
  return undefined;
}
