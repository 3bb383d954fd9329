// The DNS benchmark's data, shared by its driver and its server process: N Services (svc-<i>.ns-<i % 100>, one
// named port, a cluster IP from 10.100.0.0/16), the same names as a hosts file for dnsmasq, and dnsperf query files.
import { formatIpv4, parseIpv4 } from "#lib/ipv4.js";
import { searchCandidates } from "../../agent/src/dns/resolv-conf.js";
import type { DnsService, DnsView } from "../../agent/src/dns/view.js";

export const ZONE = "cluster.local";
const BASE_IP = parseIpv4("10.100.0.0") ?? 0;

function service(i: number): DnsService {
  return {
    namespace: `ns-${i % 100}`,
    name: `svc-${i}`,
    clusterIP: formatIpv4(BASE_IP + i + 1),
    ports: [{ name: "http", port: 80, protocol: "TCP" }],
    endpoints: [],
  };
}

export function benchView(count: number): DnsView {
  return { zone: ZONE, services: Array.from({ length: count }, (_, i) => service(i)), pods: [] };
}

export function hostsFile(count: number): string {
  return Array.from({ length: count }, (_, i) => {
    const s = service(i);
    return `${s.clusterIP} ${s.name}.${s.namespace}.svc.${ZONE}\n`;
  }).join("");
}

/** Every Service's A record once, shuffled (a fixed seed: the same order for both servers). */
export function clusterQueries(count: number): string {
  const lines = Array.from({ length: count }, (_, i) => {
    const s = service(i);
    return `${s.name}.${s.namespace}.svc.${ZONE} A`;
  });
  let seed = 12345;
  for (let i = lines.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    const j = seed % (i + 1);
    [lines[i], lines[j]] = [lines[j] ?? "", lines[i] ?? ""];
  }
  return `${lines.join("\n")}\n`;
}

/** What pods of ns-0 send for `count` external names with glibc and ndots:5: A, then AAAA, each walking the list. */
export function externalQueries(count: number): { file: string; perLookup: number } {
  const conf = { search: [`ns-0.svc.${ZONE}`, `svc.${ZONE}`, ZONE], ndots: 5 };
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    for (const type of ["A", "AAAA"])
      for (const name of searchCandidates(`host-${i}.example.com`, conf)) lines.push(`${name} ${type}`);
  }
  return { file: `${lines.join("\n")}\n`, perLookup: 2 * (conf.search.length + 1) };
}
