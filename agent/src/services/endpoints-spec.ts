// The explicit endpoints of a Service without a selector, stored as a v1 Endpoints object (pure). What trellis
// supports of it: addresses, and per subset the ports by name (or the one port of a single-port Service).
import { InvalidArgumentError } from "#lib/errors.js";
import { formatIpv4, parseIpv4 } from "#lib/ipv4.js";
import { isRecord } from "#lib/records.js";
import type { ServiceSpec } from "./service-spec.js";

/** One backend of one Service port. */
export interface ExplicitEndpoint {
  readonly ip: number;
  /** The target port; undefined: the Service port's targetPort. */
  readonly port?: number;
}

/** "172.30.40.3" or "172.30.40.3:80", as `service create --endpoint` takes it. */
export function parseEndpointArg(text: string): ExplicitEndpoint {
  const parts = text.split(":");
  const ip = parseIpv4(parts[0] ?? "");
  const port = parts[1] === undefined ? undefined : /^\d{1,5}$/.test(parts[1]) ? Number(parts[1]) : NaN;
  if (ip === undefined || parts.length > 2 || (port !== undefined && !(port >= 1 && port <= 65535))) {
    throw new InvalidArgumentError("--endpoint", text, "must be IP or IP:PORT such as 172.30.40.3:80");
  }
  return port === undefined ? { ip } : { ip, port };
}

/** The v1 Endpoints object for a Service's explicit endpoints; a port override needs a single-port Service. */
export function endpointsObject(spec: ServiceSpec, endpoints: readonly ExplicitEndpoint[]): Record<string, unknown> {
  if (spec.selector !== undefined)
    throw new InvalidArgumentError(
      "--endpoint",
      endpoints.map((e) => formatIpv4(e.ip)).join(","),
      "is only for a Service without a selector (its pods are its endpoints)",
    );
  const [only, ...others] = spec.ports;
  const overridden = endpoints.some((e) => e.port !== undefined);
  if (overridden && (only === undefined || others.length > 0))
    throw new InvalidArgumentError(
      "--endpoint",
      "IP:PORT",
      "a port per endpoint needs a Service with exactly one port; give IP alone for several ports",
    );
  const byPort = new Map<number | undefined, number[]>();
  for (const e of endpoints) byPort.set(e.port, [...(byPort.get(e.port) ?? []), e.ip]);
  const subsets = [...byPort].map(([port, ips]) => ({
    addresses: ips.map((ip) => ({ ip: formatIpv4(ip) })),
    ports: spec.ports.map((p) => ({
      ...(p.name === undefined ? {} : { name: p.name }),
      port: port ?? p.targetPort,
      protocol: p.protocol,
    })),
  }));
  return { apiVersion: "v1", kind: "Endpoints", metadata: { name: spec.name, namespace: spec.namespace }, subsets };
}

/** Backends per Service port (by index), read back from a stored Endpoints object; malformed parts are refused. */
export function parseEndpointsObject(raw: unknown, spec: ServiceSpec): { ip: number; port: number }[][] {
  if (!isRecord(raw) || !Array.isArray(raw.subsets))
    throw new InvalidArgumentError("Endpoints", raw, "must be a v1 Endpoints object with subsets");
  const perPort: { ip: number; port: number }[][] = spec.ports.map(() => []);
  for (const [s, subset] of raw.subsets.entries()) {
    if (!isRecord(subset) || !Array.isArray(subset.addresses) || !Array.isArray(subset.ports))
      throw new InvalidArgumentError(`subsets[${s}]`, subset, "must have addresses and ports");
    const ips = subset.addresses.map((a: unknown, n) => {
      const ip = isRecord(a) && typeof a.ip === "string" ? parseIpv4(a.ip) : undefined;
      if (ip === undefined)
        throw new InvalidArgumentError(
          `subsets[${s}].addresses[${n}].ip`,
          isRecord(a) ? a.ip : a,
          "must be an IPv4 address",
        );
      return ip;
    });
    for (const [n, p] of (subset.ports as unknown[]).entries()) {
      if (!isRecord(p) || typeof p.port !== "number" || !Number.isInteger(p.port) || p.port < 1 || p.port > 65535)
        throw new InvalidArgumentError(`subsets[${s}].ports[${n}]`, p, "must have a port from 1 to 65535");
      const index = spec.ports.findIndex(
        (sp) => (sp.name ?? "") === (typeof p.name === "string" ? p.name : "") && sp.protocol === (p.protocol ?? "TCP"),
      );
      if (index < 0) continue; // a port the Service does not have
      const port = p.port;
      perPort[index]?.push(...ips.map((ip) => ({ ip, port })));
    }
  }
  return perPort;
}
