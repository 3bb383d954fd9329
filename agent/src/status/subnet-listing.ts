// `agent status`: every lease in the registry as rows, then as a table or JSON. Collection talks to the registry
// port; formatting is pure.
import { formatDuration } from "#lib/duration.js";
import { formatCidr, sameCidr, type Cidr } from "#lib/ipv4.js";
import { formatCidr6 } from "#lib/ipv6.js";
import type { StoredLease, SubnetRegistry } from "../lease/registry.js";

export interface LeaseRow {
  readonly subnet: string;
  /** The IPv6 half of a dual-stack (or IPv6-only) lease. */
  readonly subnet6: string | null;
  readonly publicIp: string | null;
  readonly publicIpv6: string | null;
  readonly backend: string | null;
  readonly vni: number | null;
  readonly vtepMac: string | null;
  /** BackendV6Data.VtepMAC: the node's IPv6 VXLAN device. */
  readonly vtepMac6: string | null;
  readonly reserved: boolean;
  /** Seconds left on the etcd lease; null for a reservation or an already expired lease. */
  readonly ttlSeconds: number | null;
  readonly expiresAt: string | null;
  /** This node's own lease. */
  readonly self: boolean;
  /** Why the value could not be decoded (the subnet is still taken). */
  readonly invalid: string | null;
  /** From the local agent: whether this peer's entries are in this node's kernel (null: unknown or not a peer). */
  readonly programmed: boolean | null;
  /** From the local agent: why this peer is not programmed (e.g. host-gw peer off-link). */
  readonly skipped: string | null;
  /** From the local agent: the same for the peer's IPv6 subnet (null: unknown, or none). */
  readonly programmed6: boolean | null;
  readonly skipped6: string | null;
}

/** What the local agent's /status said, or why it could not be asked. */
export type LocalAgent =
  | {
      readonly url: string;
      readonly reachable: true;
      readonly ready: boolean;
      readonly reasons: readonly string[];
      readonly warnings: readonly string[];
      /** What its proxy has programmed; null when Services are off. */
      readonly services: { readonly services: number; readonly endpoints: number } | null;
    }
  | { readonly url: string; readonly reachable: false; readonly error: string };

export interface LocalPeerView {
  /** 4 or 6; absent from an agent that knows IPv4 only. */
  readonly family?: number;
  readonly subnet: string;
  readonly programmed: boolean;
  readonly skipped: string | null;
}

/** Adds the local agent's per-peer view (each subnet of each family) to the rows (pure). */
export function withLocalView(rows: readonly LeaseRow[], peers: readonly LocalPeerView[] | undefined): LeaseRow[] {
  if (peers === undefined) return [...rows];
  const key = (family: number, subnet: string): string => `${family} ${subnet}`;
  const bySubnet = new Map(peers.map((p) => [key(p.family ?? 4, p.subnet), p]));
  return rows.map((row) => {
    if (row.self) return row;
    const peer = bySubnet.get(key(4, row.subnet));
    const peer6 = row.subnet6 === null ? undefined : bySubnet.get(key(6, row.subnet6));
    return {
      ...row,
      ...(peer === undefined ? {} : { programmed: peer.programmed, skipped: peer.skipped }),
      ...(peer6 === undefined ? {} : { programmed6: peer6.programmed, skipped6: peer6.skipped }),
    };
  });
}

export interface SelfIdentity {
  readonly publicIp?: string | undefined;
  readonly subnet?: Cidr | undefined;
}

/** How many TTL lookups run at once. */
const TTL_CONCURRENCY = 16;

async function ttls(
  registry: SubnetRegistry,
  leases: readonly StoredLease[],
): Promise<Map<string, number | undefined>> {
  const ids = [...new Set(leases.map((l) => l.leaseId).filter((id): id is string => id !== undefined))];
  const result = new Map<string, number | undefined>();
  for (let i = 0; i < ids.length; i += TTL_CONCURRENCY) {
    const batch = ids.slice(i, i + TTL_CONCURRENCY);
    const values = await Promise.all(batch.map((id) => registry.timeToLive(id)));
    batch.forEach((id, n) => result.set(id, values[n]));
  }
  return result;
}

export function isSelf(lease: StoredLease, self: SelfIdentity): boolean {
  if (self.subnet !== undefined && sameCidr(self.subnet, lease.subnet)) return true;
  return self.publicIp !== undefined && lease.attrs.ok && lease.attrs.value.publicIp === self.publicIp;
}

export async function collectLeaseRows(registry: SubnetRegistry, self: SelfIdentity, now: number): Promise<LeaseRow[]> {
  const listing = await registry.listLeases();
  const remaining = await ttls(registry, listing.leases);
  const rows = listing.leases.map((lease): LeaseRow => {
    const ttl = lease.leaseId === undefined ? undefined : remaining.get(lease.leaseId);
    const attrs = lease.attrs.ok ? lease.attrs.value : undefined;
    return {
      subnet: formatCidr(lease.subnet),
      subnet6: lease.subnet6 === undefined ? null : formatCidr6(lease.subnet6),
      publicIp: attrs?.publicIp ?? null,
      publicIpv6: attrs?.publicIpv6 ?? null,
      backend: attrs?.backendType ?? null,
      vni: attrs?.vni ?? null,
      vtepMac: attrs?.vtepMac ?? null,
      vtepMac6: attrs?.v6?.vtepMac ?? null,
      reserved: lease.leaseId === undefined,
      ttlSeconds: ttl ?? null,
      expiresAt: ttl === undefined ? null : new Date(now + ttl * 1000).toISOString(),
      self: isSelf(lease, self),
      invalid: lease.attrs.ok ? null : lease.attrs.reason,
      programmed: null,
      skipped: null,
      programmed6: null,
      skipped6: null,
    };
  });
  return rows.sort((a, b) => compareSubnets(a.subnet, b.subnet) || (a.subnet6 ?? "").localeCompare(b.subnet6 ?? ""));
}

function compareSubnets(a: string, b: string): number {
  const key = (s: string): number[] => s.split(/[./]/).map(Number);
  const ka = key(a);
  const kb = key(b);
  for (let i = 0; i < ka.length; i++) {
    const d = (ka[i] ?? 0) - (kb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function expiryText(row: LeaseRow): string {
  if (row.reserved) return "reserved";
  if (row.ttlSeconds === null) return "expired";
  return `in ${formatDuration(row.ttlSeconds * 1000)}`;
}

function routeState(programmed: boolean | null, skipped: string | null): string {
  if (skipped !== null) return `skipped: ${skipped}`;
  if (programmed === null) return "-";
  return programmed ? "programmed" : "MISSING";
}

function routeText(row: LeaseRow, ipv6: boolean, ipv4: boolean): string {
  if (row.self) return "(this node)";
  if (!ipv4) return routeState(row.programmed6, row.skipped6);
  const v4 = routeState(row.programmed, row.skipped);
  if (!ipv6 || row.subnet6 === null) return v4;
  return `${v4}; IPv6: ${routeState(row.programmed6, row.skipped6)}`;
}

export function formatLocalAgent(local: LocalAgent | undefined): string {
  if (local === undefined) return "";
  if (!local.reachable)
    return `local agent: not reachable at ${local.url} (${local.error}); is \`trellis-agent run\` running here?\n`;
  const state = local.ready
    ? `local agent: ready (${local.url})\n`
    : `local agent: NOT READY: ${local.reasons.join("; ")}\n`;
  const services =
    local.services === null
      ? ""
      : `local agent: ${local.services.services} Service(s) programmed, ${local.services.endpoints} endpoint(s)\n`;
  return state + services + local.warnings.map((w) => `local agent warning: ${w}\n`).join("");
}

const NO_IPV4_SUBNET = "0.0.0.0/0";

/**
 * An aligned text table; "*" marks this node's lease; ROUTE shows the local agent's view when it answered. With any
 * IPv6 lease, the IPv6 subnet and PublicIPv6 have columns of their own, and ROUTE shows the IPv6 subnet's state too.
 */
export function formatLeaseTable(rows: readonly LeaseRow[], local?: LocalAgent): string {
  if (rows.length === 0) return `${formatLocalAgent(local)}No subnet leases.\n`;
  const withRoutes = local?.reachable === true;
  const ipv6 = rows.some((row) => row.subnet6 !== null);
  // An IPv6-only network's keys have the empty IPv4 half: no IPv4 columns then.
  const ipv4 = rows.some((row) => row.subnet !== NO_IPV4_SUBNET);
  const header = [
    "",
    ...(ipv4 ? ["SUBNET"] : []),
    ...(ipv6 ? ["IPV6 SUBNET"] : []),
    "PUBLIC IP",
    ...(ipv6 ? ["PUBLIC IPV6"] : []),
    "BACKEND",
    ...(ipv4 ? ["VTEP MAC"] : []),
    "EXPIRES",
    ...(withRoutes ? ["ROUTE"] : []),
  ];
  const lines = rows.map((row) => [
    row.self ? "*" : "",
    ...(ipv4 ? [row.subnet] : []),
    ...(ipv6 ? [row.subnet6 ?? "-"] : []),
    row.publicIp ?? "-",
    ...(ipv6 ? [row.publicIpv6 ?? "-"] : []),
    row.backend ?? "-",
    ...(ipv4 ? [row.vtepMac ?? "-"] : []),
    row.invalid === null ? expiryText(row) : `invalid: ${row.invalid}`,
    ...(withRoutes ? [routeText(row, ipv6, ipv4)] : []),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? "").length)));
  const render = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  const own = rows.some((r) => r.self) ? "\n* this node" : "";
  return `${formatLocalAgent(local)}${[render(header), ...lines.map(render)].join("\n")}${own}\n`;
}

export function formatLeaseJson(rows: readonly LeaseRow[], local?: LocalAgent): string {
  return `${JSON.stringify({ localAgent: local ?? null, leases: rows }, null, 2)}\n`;
}
