// `service list` as kubectl prints `get services` (plus an ENDPOINTS column): rows, ages and the table (pure).
import { formatIpv4 } from "#lib/ipv4.js";
import type { ResolvedService } from "./catalog.js";

export interface ServiceRow {
  readonly namespace: string;
  readonly name: string;
  readonly clusterIP: string;
  /** "8000/TCP,53/UDP" */
  readonly ports: string;
  readonly endpoints: readonly string[];
  readonly createdAt: string | undefined;
}

export function serviceRow(service: ResolvedService, createdAt: string | undefined): ServiceRow {
  const { spec } = service;
  const endpoints = new Set<string>();
  for (const list of service.backends) for (const b of list) endpoints.add(`${formatIpv4(b.ip)}:${b.port}`);
  return {
    namespace: spec.namespace,
    name: spec.name,
    clusterIP: spec.clusterIP === "None" ? "None" : formatIpv4(spec.clusterIP),
    ports: spec.ports.map((p) => `${p.port}/${p.protocol}`).join(",") || "<none>",
    endpoints: spec.clusterIP === "None" ? service.endpointIps.map(formatIpv4) : [...endpoints],
    createdAt,
  };
}

/** kubectl's short ages: 45s, 12m, 5h, 3d. */
export function formatAge(createdAt: string | undefined, now: number): string {
  const at = createdAt === undefined ? NaN : Date.parse(createdAt);
  if (Number.isNaN(at)) return "<unknown>";
  const s = Math.max(0, Math.floor((now - at) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172_800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/** At most three endpoints, then "+ N more...", as kubectl shows them. */
function endpointsCell(endpoints: readonly string[]): string {
  if (endpoints.length === 0) return "<none>";
  const shown = endpoints.slice(0, 3).join(",");
  return endpoints.length > 3 ? `${shown} + ${endpoints.length - 3} more...` : shown;
}

export function formatServiceTable(rows: readonly ServiceRow[], now: number): string {
  const header = ["NAMESPACE", "NAME", "CLUSTER-IP", "PORT(S)", "ENDPOINTS", "AGE"];
  const cells = rows.map((r) => [
    r.namespace,
    r.name,
    r.clusterIP,
    r.ports,
    endpointsCell(r.endpoints),
    formatAge(r.createdAt, now),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? "").length)));
  const line = (c: readonly string[]): string =>
    c
      .map((v, i) => (i === c.length - 1 ? v : v.padEnd((widths[i] ?? 0) + 3)))
      .join("")
      .trimEnd();
  return `${[line(header), ...cells.map(line)].join("\n")}\n`;
}
