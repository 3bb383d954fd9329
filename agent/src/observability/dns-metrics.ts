// The DNS server's Prometheus metrics (prom-client), read from DnsServer.stats() at scrape time, plus the view
// rebuilds and registry problems fed from the daemon's events.
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ClusterDnsEvent } from "../daemon/cluster-dns.js";
import { RESPONSE_RCODES, type DnsStats } from "../dns/stats.js";

export class DnsMetrics {
  readonly registry = new Registry();
  private stats: (() => DnsStats) | undefined;
  private ready: (() => boolean) | undefined;

  private readonly rebuilds = new Histogram({
    name: "trellis_dns_view_build_seconds",
    help: "Building the DNS view from the registry after a change (before the server indexes it).",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });
  private readonly invalid = new Counter({
    name: "trellis_registry_invalid_values_total",
    help: "Service registry values skipped because they could not be used (each key and reason once).",
    registers: [this.registry],
  });

  constructor(version: string) {
    new Gauge({
      name: "trellis_build_info",
      help: "Always 1.",
      labelNames: ["version", "node_version"],
      registers: [this.registry],
    }).set({ version, node_version: process.version }, 1);
    const live = (): DnsStats | undefined => this.stats?.();
    const counter = (
      name: string,
      help: string,
      labelNames: string[],
      read: (s: DnsStats, set: (labels: Record<string, string>, v: number) => void) => void,
    ): void => {
      // Monotonic values owned by the server: exposed as counters whose value is set at scrape time.
      new Counter({
        name,
        help,
        labelNames,
        registers: [this.registry],
        collect() {
          const s = live();
          if (s === undefined) return;
          this.reset();
          read(s, (labels, v) => {
            this.inc(labels, v);
          });
        },
      });
    };
    counter("trellis_dns_queries_total", "Queries received, by transport.", ["transport"], (s, set) => {
      set({ transport: "udp" }, s.queries.udp);
      set({ transport: "tcp" }, s.queries.tcp);
    });
    counter("trellis_dns_responses_total", "Responses sent, by rcode.", ["rcode"], (s, set) => {
      for (const rcode of RESPONSE_RCODES) set({ rcode }, s.responses[rcode]);
    });
    counter(
      "trellis_dns_answers_total",
      "Answers by where they came from (zone, cache, upstream, failed, error).",
      ["source"],
      (s, set) => {
        for (const [source, v] of Object.entries(s.sources)) set({ source }, v);
      },
    );
    counter(
      "trellis_dns_dropped_total",
      "Queries dropped without an answer (unreadable, a response, a full queue).",
      [],
      (s, set) => {
        set({}, s.dropped);
      },
    );
    counter(
      "trellis_dns_truncated_total",
      "UDP answers sent truncated (the client retries over TCP).",
      [],
      (s, set) => {
        set({}, s.truncated);
      },
    );
    const gauge = (name: string, help: string, read: (s: DnsStats) => number): void => {
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          const s = live();
          if (s !== undefined) this.set(read(s));
        },
      });
    };
    gauge("trellis_dns_view_services", "Services in the DNS view.", (s) => s.view.services);
    gauge("trellis_dns_view_pods", "Pods in the DNS view.", (s) => s.view.pods);
    gauge("trellis_dns_view_names", "Names the zone index answers.", (s) => s.view.names);
    gauge("trellis_dns_cache_entries", "Entries in the answer cache of forwarded names.", (s) => s.cache.entries);
    gauge("trellis_dns_cache_bytes", "Bytes held by the answer cache.", (s) => s.cache.bytes);
    gauge("trellis_dns_upstream_in_flight", "Distinct questions waiting on an upstream.", (s) => s.upstream.inFlight);
    gauge("trellis_dns_tcp_connections", "Open TCP connections.", (s) => s.tcp.open);
    const isReady = (): boolean => this.ready?.() === true;
    new Gauge({
      name: "trellis_ready",
      help: "1 when /readyz answers 200.",
      registers: [this.registry],
      collect() {
        this.set(isReady() ? 1 : 0);
      },
    });
  }

  attach(stats: () => DnsStats, ready: () => boolean): void {
    this.stats = stats;
    this.ready = ready;
  }

  record(event: ClusterDnsEvent): void {
    if (event.type === "view") this.rebuilds.observe(event.ms / 1000);
    else if (event.type === "invalid") this.invalid.inc();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
