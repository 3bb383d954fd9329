// One-shot registry operations behind the CLI: network config, reservations and decommissioning. Each validates
// before it writes and writes in one transaction, so a failed command changes nothing.
import { InvalidArgumentError, TrellisError } from "#lib/errors.js";
import { containsIp, formatCidr, isCanonical, sameCidr, type Cidr } from "#lib/ipv4.js";
import {
  formatNetworkConfig,
  parseNetworkConfig,
  validateNetworkConfig,
  type NetworkConfig,
} from "../config/network-config.js";
import type { LeaseAttrs } from "./lease-codec.js";
import type { StoredLease, SubnetRegistry } from "./registry.js";

export async function readNetworkConfig(registry: SubnetRegistry, prefix: string): Promise<NetworkConfig> {
  const text = await registry.getNetworkConfig();
  if (text === undefined) {
    throw new TrellisError(
      "NOT_FOUND",
      `no network config at ${prefix}/config: write one with \`trellis-agent network set --network 172.30.0.0/16\``,
    );
  }
  return parseNetworkConfig(text);
}

/** Validates the flannel-format object and stores it; returns what was written (defaults filled in). */
export async function writeNetworkConfig(
  registry: SubnetRegistry,
  raw: Record<string, unknown>,
): Promise<NetworkConfig> {
  const config = validateNetworkConfig(raw);
  await registry.putNetworkConfig(formatNetworkConfig(config));
  return config;
}

function describeHolder(lease: StoredLease): string {
  return lease.attrs.ok ? lease.attrs.value.publicIp : `an unreadable value (${lease.attrs.reason})`;
}

function checkSubnetFits(config: NetworkConfig, subnet: Cidr, field: string): void {
  // Reservations name an IPv4 subnet (and write an IPv4-only key): on a network with IPv6 they would be half a lease.
  if (!config.enableIPv4 || config.ipv6 !== undefined)
    throw new InvalidArgumentError(
      field,
      formatCidr(subnet),
      "cannot be reserved: reservations are for IPv4-only networks (this one has IPv6)",
    );
  if (!isCanonical(subnet) || subnet.prefixLen !== config.subnetLen || !containsIp(config.network, subnet.ip)) {
    throw new InvalidArgumentError(
      field,
      formatCidr(subnet),
      `must be a /${config.subnetLen} subnet inside Network ${formatCidr(config.network)}`,
    );
  }
}

export type ReserveOutcome = "created" | "converted" | "unchanged";

/** Reserves a subnet (a key without TTL) for the node with publicIp; never takes one held by another node. */
export async function reserveSubnet(
  registry: SubnetRegistry,
  config: NetworkConfig,
  subnet: Cidr,
  publicIp: string,
): Promise<ReserveOutcome> {
  checkSubnetFits(config, subnet, "<subnet>");
  const { leases } = await registry.listLeases();
  const existing = leases.find((lease) => sameCidr(lease.subnet, subnet));
  const attrs: LeaseAttrs = { publicIp, backendType: config.backend.type };
  if (existing === undefined) {
    if (!(await registry.createLease(subnet, attrs, undefined))) {
      throw new TrellisError(
        "CONFLICT",
        `${formatCidr(subnet)} was taken by another node while reserving; nothing written`,
      );
    }
    return "created";
  }
  if (!existing.attrs.ok || existing.attrs.value.publicIp !== publicIp) {
    throw new TrellisError("CONFLICT", `${formatCidr(subnet)} is held by ${describeHolder(existing)}; nothing written`);
  }
  if (existing.leaseId === undefined) return "unchanged";
  // The node already holds it with a TTL: keep its value, drop the TTL.
  if (!(await registry.replaceLease(subnet, existing.attrs.value, existing.modRevision, undefined))) {
    throw new TrellisError("CONFLICT", `${formatCidr(subnet)} changed while reserving; nothing written, try again`);
  }
  await registry.revoke(existing.leaseId).catch(() => undefined);
  return "converted";
}

export async function unreserveSubnet(registry: SubnetRegistry, subnet: Cidr): Promise<StoredLease> {
  const { leases } = await registry.listLeases();
  const existing = leases.find((lease) => sameCidr(lease.subnet, subnet));
  if (existing === undefined) throw new TrellisError("NOT_FOUND", `there is no reservation for ${formatCidr(subnet)}`);
  if (existing.leaseId !== undefined) {
    throw new TrellisError(
      "CONFLICT",
      `${formatCidr(subnet)} is a lease with a TTL held by ${describeHolder(existing)}, not a reservation; run \`trellis-agent leave\` on that node instead`,
    );
  }
  if (!(await registry.deleteLease(subnet, existing.modRevision))) {
    throw new TrellisError("CONFLICT", `${formatCidr(subnet)} changed while unreserving; nothing deleted, try again`);
  }
  return existing;
}

export interface LeaveOutcome {
  readonly released: readonly Cidr[];
  /** Reservations naming this node stay: they belong to the administrator (`unreserve` removes them). */
  readonly keptReservations: readonly Cidr[];
}

/** Releases every TTL lease that names publicIp. */
export async function leaveNetwork(registry: SubnetRegistry, publicIp: string): Promise<LeaveOutcome> {
  const { leases } = await registry.listLeases();
  const mine = leases.filter((lease) => lease.attrs.ok && lease.attrs.value.publicIp === publicIp);
  const released: Cidr[] = [];
  const keptReservations: Cidr[] = [];
  for (const lease of mine) {
    if (lease.leaseId === undefined) {
      keptReservations.push(lease.subnet);
      continue;
    }
    if (await registry.deleteLease(lease.subnet, lease.modRevision, lease.subnet6)) released.push(lease.subnet);
    await registry.revoke(lease.leaseId);
  }
  return { released, keptReservations };
}
