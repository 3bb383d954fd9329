// The cluster DNS daemon (`trellis-agent dns`), composed: the service registry and the node leases mirrored from
// etcd into the catalog, a DNS view rebuilt from it on every change (batched for a few milliseconds), handed to the
// DNS server, which starts listening only once it has a complete snapshot; and this server published as an endpoint
// of the DNS Service. etcd unreachable: the server keeps answering from the last snapshot.
import { isAborted } from "#lib/abort.js";
import type { Clock } from "#lib/clock.js";
import { Emitter } from "#lib/emitter.js";
import type { ListenAddress } from "../dns/options.js";
import type { DnsServerEvent } from "../dns/server.js";
import type { DnsStats } from "../dns/stats.js";
import type { DnsView } from "../dns/view.js";
import type { KvStore } from "../kv/kv-store.js";
import { PrefixMirror, type MirrorEvent } from "../kv/prefix-mirror.js";
import { ServiceCatalog } from "../services/catalog.js";
import { dnsView } from "../services/dns-view.js";
import type { RegistryLayout } from "../services/registry-layout.js";
import { SelfEndpoint, type SelfEndpointEvent, type SelfEndpointOptions } from "../services/self-endpoint.js";

/** How long changes are gathered before the view is rebuilt (a burst of writes costs one rebuild). */
export const VIEW_DEBOUNCE_MS = 20;

/** What the daemon needs of the DNS server (agent/src/dns/server.ts). */
export interface DnsServing {
  readonly events: Emitter<DnsServerEvent>;
  start(): Promise<readonly ListenAddress[]>;
  setView(view: DnsView): void;
  stats(): DnsStats;
  close(): Promise<void>;
}

export type ClusterDnsEvent =
  | { readonly type: "registry"; readonly event: MirrorEvent }
  | { readonly type: "leases"; readonly event: MirrorEvent }
  | {
      readonly type: "view";
      readonly services: number;
      readonly pods: number;
      readonly ms: number;
      readonly first: boolean;
    }
  | { readonly type: "server"; readonly event: DnsServerEvent }
  | { readonly type: "endpoint"; readonly event: SelfEndpointEvent }
  | { readonly type: "lameduck"; readonly ms: number }
  | { readonly type: "invalid"; readonly key: string; readonly reason: string };

export interface ClusterDnsDeps {
  readonly kv: KvStore;
  readonly layout: RegistryLayout;
  /** The node leases' prefix ("/coreos.com/network/subnets/"): pods of nodes without one are not answered. */
  readonly subnetsPrefix: string;
  readonly clock: Clock;
  readonly server: DnsServing;
  /** How this server is published as an endpoint of the DNS Service; undefined: not published. */
  readonly selfEndpoint: Omit<SelfEndpointOptions, "kv" | "layout" | "clock"> | undefined;
  /** How long the server keeps answering after withdrawing its endpoint at stop: the proxies of every node need a
   * moment to stop sending it queries (CoreDNS's `lameduck`). */
  readonly lameduckMs: number;
}

export class ClusterDns {
  readonly events = new Emitter<ClusterDnsEvent>();
  readonly catalog: ServiceCatalog;
  private readonly registry: PrefixMirror;
  private readonly leases: PrefixMirror;
  private readonly endpoint: SelfEndpoint | undefined;
  private readonly reported = new Map<string, string>();
  private dirty = false;
  private viewSet = false;
  private listening: readonly ListenAddress[] = [];
  private wake: (() => void) | undefined;
  private withdrawn = false;

  constructor(private readonly deps: ClusterDnsDeps) {
    this.catalog = new ServiceCatalog(deps.layout);
    this.registry = new PrefixMirror({
      kv: deps.kv,
      prefix: deps.layout.all,
      skip: [deps.layout.clusterIps],
      clock: deps.clock,
    });
    this.leases = new PrefixMirror({ kv: deps.kv, prefix: deps.subnetsPrefix, clock: deps.clock });
    this.endpoint =
      deps.selfEndpoint === undefined
        ? undefined
        : new SelfEndpoint({ ...deps.selfEndpoint, kv: deps.kv, layout: deps.layout, clock: deps.clock });
    this.registry.events.on((event) => {
      if (event.type === "changes") {
        for (const change of event.changes) this.catalog.apply(change);
        this.reportProblems();
        this.changed();
      }
      this.events.emit({ type: "registry", event });
    });
    this.leases.events.on((event) => {
      if (event.type === "changes") this.changed();
      this.events.emit({ type: "leases", event });
    });
    deps.server.events.on((event) => {
      this.events.emit({ type: "server", event });
    });
    this.endpoint?.events.on((event) => {
      if (event.type === "withdrawn") this.withdrawn = true;
      this.events.emit({ type: "endpoint", event });
    });
  }

  private leased = (node: string): boolean => this.leases.revisions().has(`${this.deps.subnetsPrefix}${node}`);

  private changed(): void {
    this.dirty = true;
    this.wake?.();
  }

  private reportProblems(): void {
    for (const [key, reason] of this.catalog.problems) {
      if (this.reported.get(key) === reason) continue;
      this.reported.set(key, reason);
      this.events.emit({ type: "invalid", key, reason });
    }
    for (const key of [...this.reported.keys()]) if (!this.catalog.problems.has(key)) this.reported.delete(key);
  }

  /** The view from the catalog as it is now. */
  view(): DnsView {
    return dnsView(this.catalog, this.leased);
  }

  /** The addresses the server listens on (empty until it has its first snapshot). */
  get addresses(): readonly ListenAddress[] {
    return this.listening;
  }

  /** Why this server does not answer as the registry says, or undefined when it does. */
  notReadyReason(): string | undefined {
    if (!this.registry.synced) return "service registry not listed yet";
    if (!this.leases.synced) return "node leases not listed yet";
    if (this.listening.length === 0) return "not listening yet";
    return undefined;
  }

  /** Ready, but short of something: not (yet) an endpoint of the DNS Service, or the etcd watch is down. */
  warnings(): string[] {
    const warnings: string[] = [];
    if (this.registry.synced && !this.registry.live)
      warnings.push("the etcd watch is down: answering from the last snapshot");
    if (this.endpoint !== undefined && !this.endpoint.isPublished)
      warnings.push(
        `not published as an endpoint of ${this.deps.selfEndpoint?.service.namespace ?? ""}/${this.deps.selfEndpoint?.service.name ?? ""} yet`,
      );
    return warnings;
  }

  private async rebuildLoop(signal: AbortSignal): Promise<void> {
    const { clock, server } = this.deps;
    signal.addEventListener("abort", () => this.wake?.(), { once: true });
    while (!signal.aborted) {
      if (!this.dirty || !this.registry.synced || !this.leases.synced) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = undefined;
        continue;
      }
      await clock.sleep(VIEW_DEBOUNCE_MS, signal).catch(() => undefined);
      if (isAborted(signal)) break;
      this.dirty = false;
      const started = performance.now();
      const view = this.view();
      server.setView(view);
      const first = !this.viewSet;
      this.viewSet = true;
      this.events.emit({
        type: "view",
        services: view.services.length,
        pods: view.pods.length,
        ms: performance.now() - started,
        first,
      });
      if (first) this.listening = await server.start();
    }
  }

  /** Runs until the signal aborts; then withdraws the endpoint, answers on for the lameduck time, and closes. */
  async run(signal: AbortSignal): Promise<void> {
    const firstView = new Promise<void>((resolve) => {
      const off = this.events.on((event) => {
        if (event.type === "view") {
          off();
          resolve();
        }
      });
      signal.addEventListener(
        "abort",
        () => {
          resolve();
        },
        { once: true },
      );
    });
    const endpoint = (async () => {
      await firstView;
      // Published only once it answers: the DNS Service never sends a query to a server that is not listening.
      while (!signal.aborted && this.listening.length === 0)
        await this.deps.clock.sleep(50, signal).catch(() => undefined);
      if (!signal.aborted) await this.endpoint?.run(signal);
    })();
    try {
      await Promise.all([this.registry.run(signal), this.leases.run(signal), this.rebuildLoop(signal), endpoint]);
    } catch (error) {
      if (!isAborted(signal)) throw error;
    } finally {
      // Only a server that was an endpoint waits: no proxy sends to one that never was.
      if (this.withdrawn && this.deps.lameduckMs > 0) {
        this.events.emit({ type: "lameduck", ms: this.deps.lameduckMs });
        await this.deps.clock.sleep(this.deps.lameduckMs);
      }
      await this.deps.server.close();
    }
  }
}
