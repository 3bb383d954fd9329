// The registry as the DNS server sees it (pure): every Service with its cluster IP and ports — a headless one with
// its endpoints' addresses — and every pod of a node that holds a lease, in the cluster domain of the service
// network config. Built whole on each change; the server indexes it once (agent/src/dns/zone-index.ts).
import { formatIpv4 } from "#lib/ipv4.js";
import type { DnsService, DnsView } from "../dns/view.js";
import type { ServiceCatalog } from "./catalog.js";

export function dnsView(catalog: ServiceCatalog, leased: (node: string) => boolean): DnsView {
  const services: DnsService[] = [];
  for (const key of catalog.serviceKeys()) {
    const service = catalog.resolve(key, leased);
    if (service === undefined) continue;
    const { spec } = service;
    const headless = spec.clusterIP === "None";
    services.push({
      namespace: spec.namespace,
      name: spec.name,
      clusterIP: headless ? "None" : formatIpv4(spec.clusterIP),
      ports: spec.ports.map((p) => ({
        ...(p.name === undefined ? {} : { name: p.name }),
        port: p.port,
        protocol: p.protocol,
      })),
      // Only a headless Service publishes its endpoints (one A record each); the others answer with the cluster IP.
      endpoints: headless ? service.endpointIps.map((ip) => ({ ip: formatIpv4(ip) })) : [],
    });
  }
  const pods = [];
  for (const pod of catalog.allPods())
    if (leased(pod.node)) pods.push({ ip: formatIpv4(pod.ip), namespace: pod.namespace });
  return { zone: catalog.config.clusterDomain, services, pods };
}
