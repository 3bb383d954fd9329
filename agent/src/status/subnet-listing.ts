// `agent status`: every lease in the registry as rows, then as a table or JSON. Collection talks to the registry
// port; formatting is pure.
import { formatDuration } from "../../../lib/src/duration.js";
import { formatCidr, sameCidr, type Cidr } from "../../../lib/src/ipv4.js";
import type { StoredLease, SubnetRegistry } from "../lease/registry.js";

export interface LeaseRow {
  readonly subnet: string;
  readonly publicIp: string | null;
  readonly backend: string | null;
  readonly vni: number | null;
  readonly vtepMac: string | null;
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
}

/** What the local agent's /status said, or why it could not be asked. */
export type LocalAgent =
  | { readonly url: string; readonly reachable: true; readonly ready: boolean; readonly reasons: readonly string[] }
  | { readonly url: string; readonly reachable: false; readonly error: string };

export interface LocalPeerView {
  readonly subnet: string;
  readonly programmed: boolean;
  readonly skipped: string | null;
}

/** Adds the local agent's per-peer view to the rows (pure). */
export function withLocalView(rows: readonly LeaseRow[], peers: readonly LocalPeerView[] | undefined): LeaseRow[] {
  if (peers === undefined) return [...rows];
  const bySubnet = new Map(peers.map((p) => [p.subnet, p]));
  return rows.map((row) => {
    const peer = bySubnet.get(row.subnet);
    if (row.self || peer === undefined) return row;
    return { ...row, programmed: peer.programmed, skipped: peer.skipped };
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
      publicIp: attrs?.publicIp ?? null,
      backend: attrs?.backendType ?? null,
      vni: attrs?.vni ?? null,
      vtepMac: attrs?.vtepMac ?? null,
      reserved: lease.leaseId === undefined,
      ttlSeconds: ttl ?? null,
      expiresAt: ttl === undefined ? null : new Date(now + ttl * 1000).toISOString(),
      self: isSelf(lease, self),
      invalid: lease.attrs.ok ? null : lease.attrs.reason,
      programmed: null,
      skipped: null,
    };
  });
  return rows.sort((a, b) => compareSubnets(a.subnet, b.subnet));
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

function routeText(row: LeaseRow): string {
  if (row.self) return "(this node)";
  if (row.skipped !== null) return `skipped: ${row.skipped}`;
  if (row.programmed === null) return "-";
  return row.programmed ? "programmed" : "MISSING";
}

export function formatLocalAgent(local: LocalAgent | undefined): string {
  if (local === undefined) return "";
  if (!local.reachable)
    return `local agent: not reachable at ${local.url} (${local.error}); is \`trellis-agent run\` running here?\n`;
  return local.ready ? `local agent: ready (${local.url})\n` : `local agent: NOT READY: ${local.reasons.join("; ")}\n`;
}

/** An aligned text table; "*" marks this node's lease; ROUTE shows the local agent's view when it answered. */
export function formatLeaseTable(rows: readonly LeaseRow[], local?: LocalAgent): string {
  if (rows.length === 0) return `${formatLocalAgent(local)}No subnet leases.\n`;
  const withRoutes = local?.reachable === true;
  const header = ["", "SUBNET", "PUBLIC IP", "BACKEND", "VTEP MAC", "EXPIRES", ...(withRoutes ? ["ROUTE"] : [])];
  const lines = rows.map((row) => [
    row.self ? "*" : "",
    row.subnet,
    row.publicIp ?? "-",
    row.backend ?? "-",
    row.vtepMac ?? "-",
    row.invalid === null ? expiryText(row) : `invalid: ${row.invalid}`,
    ...(withRoutes ? [routeText(row)] : []),
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
