// The lookup index of one DnsView (pure, built once per snapshot): every name of the cluster zone is materialised
// with its records, and every ancestor of a name exists as an empty non-terminal. So a query is one Map lookup, and
// "does this name exist" (NXDOMAIN vs NODATA) is exactly "is it in the map" — no rule per name shape to get wrong.
// Names follow the Kubernetes DNS specification 1.0.1 (docs/decisions/0013-dns-server.md has the list).

import { InvalidArgumentError } from "#lib/errors.js";
import { canonicalIpv4, dashedIpv4, isDnsLabel, isServicePortName, reverseIpv4Name } from "./names.js";
import type { DnsService, DnsView } from "./view.js";

export const SCHEMA_VERSION = "1.0.1";

export interface SrvData {
  readonly priority: number;
  readonly weight: number;
  readonly port: number;
  readonly target: string;
}

export interface SoaData {
  readonly mname: string;
  readonly rname: string;
  readonly serial: number;
  readonly refresh: number;
  readonly retry: number;
  readonly expire: number;
  readonly minimum: number;
}

export type ZoneRecord =
  | { readonly type: "A"; readonly data: string }
  | { readonly type: "SRV"; readonly data: SrvData }
  | { readonly type: "TXT"; readonly data: string }
  | { readonly type: "NS"; readonly data: string }
  | { readonly type: "SOA"; readonly data: SoaData };

/** The records of a name of the zone; empty for an empty non-terminal (it exists: NODATA, never NXDOMAIN). */
export type ZoneNode = readonly ZoneRecord[];

/** An entry of the view that the index left out, for the caller to log. */
export interface SkippedEntry {
  readonly what: string;
  readonly reason: string;
}

export interface ZoneIndex {
  /** The zone's lookup key (lower case, no trailing dot). */
  readonly zone: string;
  readonly names: ReadonlyMap<string, ZoneNode>;
  /** `d.c.b.a.in-addr.arpa` → PTR targets, for cluster IPs and headless endpoints with a hostname. */
  readonly reverse: ReadonlyMap<string, readonly string[]>;
  readonly soa: SoaData;
  readonly services: number;
  readonly pods: number;
  readonly skipped: readonly SkippedEntry[];
}

export interface ZoneIndexOptions {
  /** SOA minimum = the negative-caching TTL clients use (RFC 2308), seconds. */
  readonly negativeTtl: number;
  /** SOA serial; the server passes a counter that grows with every view. */
  readonly serial: number;
  /** Addresses of `ns.dns.<zone>`, the name the apex NS record points to (e.g. the DNS Service's cluster IP). */
  readonly nameserverAddresses: readonly string[];
}

class Builder {
  readonly names = new Map<string, ZoneRecord[]>();
  readonly reverse = new Map<string, string[]>();
  private readonly seen = new Map<string, Set<string>>();

  constructor(private readonly zone: string) {}

  /** Adds the name and every missing ancestor down to the zone apex. */
  ensure(name: string): ZoneRecord[] {
    const existing = this.names.get(name);
    if (existing !== undefined) return existing;
    const records: ZoneRecord[] = [];
    this.names.set(name, records);
    if (name !== this.zone) this.ensure(name.slice(name.indexOf(".") + 1));
    return records;
  }

  add(name: string, record: ZoneRecord): void {
    // Duplicates (two endpoints with one IP, one port listed twice) would be repeated RRs: skip them. Most names
    // have a record or two, so a scan; a big headless A set gets a Set for the build.
    const records = this.ensure(name);
    if (records.length < 16) {
      if (records.some((r) => sameRecord(r, record))) return;
    } else {
      let seen = this.seen.get(name);
      if (seen === undefined) {
        seen = new Set(records.map(recordKey));
        this.seen.set(name, seen);
      }
      const key = recordKey(record);
      if (seen.has(key)) return;
      seen.add(key);
    }
    records.push(record);
  }

  addPtr(ip: string, target: string): void {
    const name = reverseIpv4Name(ip);
    const targets = this.reverse.get(name) ?? [];
    if (!targets.includes(target)) targets.push(target);
    this.reverse.set(name, targets);
  }
}

export function validateZone(zone: string): string {
  const key = zone.toLowerCase();
  if (key.length === 0 || key.length > 200 || !key.split(".").every(isDnsLabel)) {
    throw new InvalidArgumentError(
      "zone",
      zone,
      "a domain name of RFC 1123 labels without a trailing dot, e.g. cluster.local",
    );
  }
  return key;
}

export function buildZoneIndex(view: DnsView, options: ZoneIndexOptions): ZoneIndex {
  const zone = validateZone(view.zone);
  const b = new Builder(zone);
  const skipped: SkippedEntry[] = [];
  const nsName = `ns.dns.${zone}`;
  const soa: SoaData = {
    mname: nsName,
    rname: `hostmaster.${zone}`,
    serial: options.serial >>> 0,
    refresh: 7200,
    retry: 1800,
    expire: 86400,
    minimum: options.negativeTtl,
  };

  b.add(zone, { type: "SOA", data: soa });
  b.add(zone, { type: "NS", data: nsName });
  b.ensure(nsName);
  for (const ip of options.nameserverAddresses) b.add(nsName, { type: "A", data: ip });
  b.add(`dns-version.${zone}`, { type: "TXT", data: SCHEMA_VERSION });
  b.ensure(`svc.${zone}`);
  b.ensure(`pod.${zone}`);

  const services = new Set<string>();
  for (const service of view.services) {
    const what = `service ${service.namespace}/${service.name}`;
    const reason = serviceProblem(service);
    if (reason !== undefined) {
      skipped.push({ what, reason });
      continue;
    }
    const base = `${service.name}.${service.namespace}.svc.${zone}`.toLowerCase();
    if (services.has(base)) {
      skipped.push({ what, reason: "listed twice; the first one is served" });
      continue;
    }
    services.add(base);
    b.ensure(`${service.namespace.toLowerCase()}.svc.${zone}`);
    if (service.clusterIP === "None") addHeadless(b, service, base, skipped);
    else addClusterIp(b, service, service.clusterIP, base);
  }

  let pods = 0;
  for (const pod of view.pods) {
    if (canonicalIpv4(pod.ip) === undefined || !isDnsLabel(pod.namespace.toLowerCase())) {
      skipped.push({
        what: `pod ${pod.namespace}/${pod.ip}`,
        reason: "needs an IPv4 address and an RFC 1123 namespace",
      });
      continue;
    }
    pods += 1;
    const ns = pod.namespace.toLowerCase();
    b.ensure(`${ns}.pod.${zone}`);
    b.ensure(`${ns}.svc.${zone}`); // a namespace with pods exists for the search path's first suffix too
    b.add(`${dashedIpv4(pod.ip)}.${ns}.pod.${zone}`, { type: "A", data: pod.ip });
  }

  return { zone, names: b.names, reverse: b.reverse, soa, services: services.size, pods, skipped };
}

function serviceProblem(service: DnsService): string | undefined {
  if (!isDnsLabel(service.name.toLowerCase())) return `name ${JSON.stringify(service.name)} is not an RFC 1123 label`;
  if (!isDnsLabel(service.namespace.toLowerCase()))
    return `namespace ${JSON.stringify(service.namespace)} is not an RFC 1123 label`;
  if (service.clusterIP !== "None" && canonicalIpv4(service.clusterIP) === undefined)
    return `clusterIP ${JSON.stringify(service.clusterIP)} is neither an IPv4 address nor "None"`;
  return undefined;
}

/** SRV owner names of the named ports, `_<port>._<proto>.<base>`; unnamed and invalid names have none. */
function srvNames(service: DnsService, base: string): { name: string; port: number }[] {
  const out: { name: string; port: number }[] = [];
  for (const port of service.ports) {
    const portName = port.name?.toLowerCase();
    if (portName === undefined || !isServicePortName(portName)) continue;
    out.push({ name: `_${portName}._${port.protocol.toLowerCase()}.${base}`, port: port.port });
  }
  return out;
}

function addClusterIp(b: Builder, service: DnsService, ip: string, base: string): void {
  b.add(base, { type: "A", data: ip });
  for (const srv of srvNames(service, base))
    b.add(srv.name, { type: "SRV", data: { priority: 0, weight: 100, port: srv.port, target: base } });
  b.addPtr(ip, base);
}

function addHeadless(b: Builder, service: DnsService, base: string, skipped: SkippedEntry[]): void {
  // One target name per endpoint: its hostname, else its dashed IP (so every SRV target resolves).
  const targets: string[] = [];
  for (const endpoint of service.endpoints) {
    const hostname = endpoint.hostname?.toLowerCase();
    if (canonicalIpv4(endpoint.ip) === undefined || (hostname !== undefined && !isDnsLabel(hostname))) {
      skipped.push({
        what: `endpoint ${endpoint.ip} of service ${service.namespace}/${service.name}`,
        reason: "needs an IPv4 address and an RFC 1123 hostname",
      });
      continue;
    }
    const target = `${hostname ?? dashedIpv4(endpoint.ip)}.${base}`;
    b.add(base, { type: "A", data: endpoint.ip });
    b.add(target, { type: "A", data: endpoint.ip });
    if (hostname !== undefined) b.addPtr(endpoint.ip, target);
    if (!targets.includes(target)) targets.push(target);
  }
  if (targets.length === 0) return; // no ready endpoint: the name does not exist (NXDOMAIN), as the spec says
  // Equal weights summing to ~100, as CoreDNS does, so clients spread over the endpoints.
  const weight = Math.max(1, Math.floor(100 / targets.length));
  for (const srv of srvNames(service, base)) {
    for (const target of targets)
      b.add(srv.name, { type: "SRV", data: { priority: 0, weight, port: srv.port, target } });
  }
}

function recordKey(record: ZoneRecord): string {
  return `${record.type} ${JSON.stringify(record.data)}`;
}

function sameRecord(a: ZoneRecord, b: ZoneRecord): boolean {
  if (a.type !== b.type) return false;
  if (typeof a.data === "string" || typeof b.data === "string") return a.data === b.data;
  return recordKey(a) === recordKey(b);
}
