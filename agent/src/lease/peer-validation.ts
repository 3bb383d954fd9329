// Which leases in etcd may become routes on this node. Pure. Anyone who can write to etcd can write any key, so
// every lease is checked against the network config before it reaches the kernel: a forged 0.0.0.0/0, a key for
// the whole network, or a /25 inside another node's subnet would otherwise become a route on every node.
// Each rejected lease carries a reason for the log, the metrics and `status`; the others are never affected.
import { containsCidr, formatCidr, isCanonical, lastAddress, maskOf, sameCidr, type Cidr } from "#lib/ipv4.js";
import { containsCidr6, formatCidr6, isCanonical6, maskOf6, sameCidr6, sizeOf6, type Cidr6 } from "#lib/ipv6.js";
import type { Peer } from "./peers.js";
import type { StoredLease } from "./registry.js";

/** The shape a lease must have: inside Network, exactly SubnetLen long (and so on a SubnetLen boundary). */
export interface LeaseShape {
  readonly network: Cidr;
  readonly subnetLen: number;
  /** False on an IPv6-only network: the leases' IPv4 part (0.0.0.0/0) is not checked. Default true. */
  readonly enableIPv4?: boolean | undefined;
  /** The IPv6 network: a lease's IPv6 subnet must be inside it, IPv6SubnetLen long. */
  readonly ipv6?: { readonly network: Cidr6; readonly subnetLen: number } | undefined;
}

export type RejectKind =
  "undecodable" | "outside-network" | "wrong-length" | "unaligned" | "overlap" | "duplicate-vtep-mac";
export const REJECT_KINDS: readonly RejectKind[] = [
  "undecodable",
  "outside-network",
  "wrong-length",
  "unaligned",
  "overlap",
  "duplicate-vtep-mac",
];

export interface RejectedLease {
  readonly subnet: Cidr;
  readonly subnet6?: Cidr6 | undefined;
  readonly publicIp: string | undefined;
  readonly modRevision: string;
  readonly kind: RejectKind;
  readonly reason: string;
}

export interface OwnIdentity {
  readonly publicIp: string;
  /** This node's subnet, when it holds one. */
  readonly subnet: Cidr | undefined;
  readonly vtepMac?: string | undefined;
  /** This node's IPv6 subnet, when its lease has one. */
  readonly subnet6?: Cidr6 | undefined;
  /** Its IPv6 device's MAC (BackendV6Data.VtepMAC). */
  readonly vtepMac6?: string | undefined;
}

export interface Admission {
  readonly peers: readonly Peer[];
  readonly rejected: readonly RejectedLease[];
}

function describeShapes(shapes: readonly LeaseShape[]): string {
  return shapes.map((s) => `Network ${formatCidr(s.network)} with SubnetLen ${s.subnetLen}`).join(" or ");
}

/** Why a subnet fits none of the shapes, or undefined when it fits one. */
function shapeProblem(subnet: Cidr, shapes: readonly LeaseShape[]): { kind: RejectKind; reason: string } | undefined {
  if (shapes.every((s) => s.enableIPv4 === false)) return undefined;
  const inside = shapes.filter((s) => containsCidr(s.network, subnet));
  if (inside.length === 0)
    return { kind: "outside-network", reason: `${formatCidr(subnet)} is not inside ${describeShapes(shapes)}` };
  if (!inside.some((s) => s.subnetLen === subnet.prefixLen)) {
    return {
      kind: "wrong-length",
      reason: `${formatCidr(subnet)} is a /${subnet.prefixLen}; leases of ${describeShapes(inside)} are /${inside.map((s) => s.subnetLen).join(" or /")}`,
    };
  }
  if (!isCanonical(subnet))
    return { kind: "unaligned", reason: `${formatCidr(subnet)} is not on a /${subnet.prefixLen} boundary` };
  return undefined;
}

/** Why an IPv6 subnet fits none of the shapes' IPv6 networks, or undefined when it fits one (or none has one). */
function shape6Problem(
  subnet6: Cidr6 | undefined,
  shapes: readonly LeaseShape[],
): { kind: RejectKind; reason: string } | undefined {
  const pools = shapes.flatMap((s) => (s.ipv6 === undefined ? [] : [s.ipv6]));
  if (subnet6 === undefined || pools.length === 0) return undefined;
  const describe = pools.map((p) => `IPv6Network ${formatCidr6(p.network)} with IPv6SubnetLen ${p.subnetLen}`);
  const inside = pools.filter((p) => containsCidr6(p.network, subnet6));
  if (inside.length === 0)
    return { kind: "outside-network", reason: `${formatCidr6(subnet6)} is not inside ${describe.join(" or ")}` };
  if (!inside.some((p) => p.subnetLen === subnet6.prefixLen))
    return {
      kind: "wrong-length",
      reason: `${formatCidr6(subnet6)} is a /${subnet6.prefixLen}; IPv6 leases are /${inside.map((p) => p.subnetLen).join(" or /")}`,
    };
  if (!isCanonical6(subnet6))
    return { kind: "unaligned", reason: `${formatCidr6(subnet6)} is not on a /${subnet6.prefixLen} boundary` };
  return undefined;
}

/** On an IPv6-only network a key's IPv4 half is flannel's empty 0.0.0.0-0 and its IPv6 half is the lease. */
function ipv6OnlyKeyProblem(lease: StoredLease): { kind: RejectKind; reason: string } | undefined {
  if (lease.subnet.ip !== 0 || lease.subnet.prefixLen !== 0)
    return {
      kind: "outside-network",
      reason: `${formatCidr(lease.subnet)}: an IPv6-only network's keys have no IPv4 subnet (0.0.0.0-0)`,
    };
  if (lease.subnet6 === undefined) return { kind: "outside-network", reason: "the key names no IPv6 subnet" };
  return undefined;
}

/**
 * Older first: the key created first (its create revision; the mod revision where the store gives none) wins a
 * conflict, so rewriting a lease never makes it lose to a younger one; then the lower address.
 */
function byAge(leases: readonly StoredLease[]): StoredLease[] {
  const keyed = leases.map((lease) => ({ lease, revision: BigInt(lease.createRevision ?? lease.modRevision) }));
  keyed.sort((a, b) =>
    a.revision < b.revision ? -1 : a.revision > b.revision ? 1 : a.lease.subnet.ip - b.lease.subnet.ip,
  );
  return keyed.map((k) => k.lease);
}

/**
 * Splits the leases into peers to program and rejected leases. Our own lease (our subnet — our IPv6 subnet on an
 * IPv6-only network — or naming our public IP) is neither. A lease overlapping our subnet always loses; of two
 * overlapping leases (either family), or two claiming one VTEP MAC (of either device), the older wins and the other
 * is skipped — deterministic, so every node makes the same choice. On a network without IPv6 a lease's IPv6 half is
 * not looked at (it is never programmed); on an IPv6-only one its IPv4 half (0.0.0.0/0) is not.
 */
export function admitLeases(
  leases: readonly StoredLease[],
  shapes: readonly LeaseShape[],
  own: OwnIdentity,
): Admission {
  const ipv4 = shapes.some((s) => s.enableIPv4 !== false);
  const ipv6 = shapes.some((s) => s.ipv6 !== undefined);
  const rejected: RejectedLease[] = [];
  const reject = (lease: StoredLease, kind: RejectKind, reason: string): void => {
    rejected.push({
      subnet: lease.subnet,
      ...(lease.subnet6 === undefined ? {} : { subnet6: lease.subnet6 }),
      publicIp: lease.attrs.ok ? lease.attrs.value.publicIp : undefined,
      modRevision: lease.modRevision,
      kind,
      reason,
    });
  };
  const isOwn = (lease: StoredLease): boolean =>
    ipv4
      ? own.subnet !== undefined && sameCidr(lease.subnet, own.subnet)
      : own.subnet6 !== undefined && lease.subnet6 !== undefined && sameCidr6(lease.subnet6, own.subnet6);
  const candidates: StoredLease[] = [];
  for (const lease of leases) {
    if (isOwn(lease)) continue;
    if (!lease.attrs.ok) {
      reject(lease, "undecodable", lease.attrs.reason);
      continue;
    }
    if (lease.attrs.value.publicIp === own.publicIp) continue;
    const problem =
      (ipv4 ? undefined : ipv6OnlyKeyProblem(lease)) ??
      shapeProblem(lease.subnet, shapes) ??
      (ipv6 ? shape6Problem(lease.subnet6, shapes) : undefined);
    if (problem !== undefined) reject(lease, problem.kind, problem.reason);
    else candidates.push(lease);
  }

  const taken4 = prefixIndex<number>(
    (ip, length) => (ip & maskOf(length)) >>> 0,
    (ip, subnet) => ip >= subnet.ip && ip <= lastAddress({ ip: subnet.ip, prefixLen: subnet.prefixLen }),
  );
  const taken6 = prefixIndex<bigint>(
    (ip, length) => ip & maskOf6(length),
    (ip, subnet) => ip >= subnet.ip && ip < subnet.ip + sizeOf6(subnet.prefixLen),
  );
  if (ipv4 && own.subnet !== undefined) taken4.accept(own.subnet, "this node");
  if (ipv6 && own.subnet6 !== undefined) taken6.accept(own.subnet6, "this node");
  const macs = new Map<string, string>();
  for (const mac of [own.vtepMac, own.vtepMac6]) if (mac !== undefined) macs.set(mac, "this node");
  const peers: Peer[] = [];
  for (const lease of byAge(candidates)) {
    if (!lease.attrs.ok) continue;
    const attrs = lease.attrs.value;
    const name = `${ipv4 || lease.subnet6 === undefined ? formatCidr(lease.subnet) : formatCidr6(lease.subnet6)} (${attrs.publicIp})`;
    const clash = ipv4 ? taken4.overlapping(lease.subnet) : undefined;
    if (clash !== undefined) {
      reject(
        lease,
        "overlap",
        `${formatCidr(lease.subnet)} overlaps ${formatCidr(clash.subnet)} of ${clash.owner}, which was there first`,
      );
      continue;
    }
    const subnet6 = ipv6 ? lease.subnet6 : undefined;
    const clash6 = subnet6 === undefined ? undefined : taken6.overlapping(subnet6);
    if (subnet6 !== undefined && clash6 !== undefined) {
      reject(
        lease,
        "overlap",
        `${formatCidr6(subnet6)} overlaps ${formatCidr6(clash6.subnet)} of ${clash6.owner}, which was there first`,
      );
      continue;
    }
    const vtepMacs = [
      ...(attrs.vtepMac === undefined ? [] : [{ field: "VtepMAC", mac: attrs.vtepMac }]),
      ...(subnet6 === undefined || attrs.v6?.vtepMac === undefined
        ? []
        : [{ field: "BackendV6Data.VtepMAC", mac: attrs.v6.vtepMac }]),
    ];
    const used = vtepMacs.find(({ mac }) => macs.has(mac));
    if (used !== undefined) {
      reject(
        lease,
        "duplicate-vtep-mac",
        `${used.field} ${used.mac} is already used by ${macs.get(used.mac) ?? "?"}, which was there first`,
      );
      continue;
    }
    if (ipv4) taken4.accept(lease.subnet, name);
    if (subnet6 !== undefined) taken6.accept(subnet6, name);
    for (const { mac } of vtepMacs) macs.set(mac, name);
    peers.push({
      subnet: lease.subnet,
      ...(lease.subnet6 === undefined ? {} : { subnet6: lease.subnet6 }),
      attrs,
      reserved: lease.leaseId === undefined,
    });
  }
  return { peers, rejected };
}

/**
 * Accepted subnets of one family, kept by prefix length: a subnet of length p overlaps an accepted one of length
 * q <= p only if its first address, masked to q, is one; smaller accepted subnets inside a bigger one (only while two
 * shapes are accepted) are found by a scan.
 */
function prefixIndex<Ip extends number | bigint>(
  mask: (ip: Ip, length: number) => Ip,
  inside: (ip: Ip, subnet: { readonly ip: Ip; readonly prefixLen: number }) => boolean,
): {
  accept(subnet: { readonly ip: Ip; readonly prefixLen: number }, owner: string): void;
  overlapping(subnet: {
    readonly ip: Ip;
    readonly prefixLen: number;
  }): { subnet: { ip: Ip; prefixLen: number }; owner: string } | undefined;
} {
  const accepted = new Map<number, Map<Ip, string>>();
  return {
    accept(subnet, owner) {
      const group = accepted.get(subnet.prefixLen) ?? new Map<Ip, string>();
      group.set(subnet.ip, owner);
      accepted.set(subnet.prefixLen, group);
    },
    overlapping(subnet) {
      for (const [length, group] of accepted) {
        if (length <= subnet.prefixLen) {
          const ip = mask(subnet.ip, length);
          const owner = group.get(ip);
          if (owner !== undefined) return { subnet: { ip, prefixLen: length }, owner };
        } else {
          for (const [ip, owner] of group) if (inside(ip, subnet)) return { subnet: { ip, prefixLen: length }, owner };
        }
      }
      return undefined;
    },
  };
}
