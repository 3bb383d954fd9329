// A process serving a Service from this node publishes itself as one of its endpoints, as the cluster DNS server
// does for kube-system/kube-dns: the Service is created when absent (selectorless, at the address the config names),
// and an endpoint slice of its own (`endpointslices/<ns>/<name>/<owner>`) is kept on an etcd lease of its own, renewed
// every third of its TTL. A process that dies stops renewing, so its slice goes with the lease; one that stops
// revokes it at once. etcd trouble is retried with backoff and reported, never thrown.
import { isAborted } from "#lib/abort.js";
import { Backoff, type BackoffPolicy } from "#lib/backoff.js";
import type { Clock } from "#lib/clock.js";
import { Emitter } from "#lib/emitter.js";
import { TrellisError } from "#lib/errors.js";
import { formatIpv4 } from "#lib/ipv4.js";
import type { KvStore } from "../kv/kv-store.js";
import { createService, getService, readServiceNetworkConfig } from "./service-admin.js";
import type { RegistryLayout, ServiceNetworkConfig } from "./registry-layout.js";
import type { ServicePort, ServiceSpec } from "./service-spec.js";

/** The etcd lease calls this needs (the subnet registry's: lease/registry.ts). */
export interface LeasePort {
  grantLease(ttlSeconds: number): Promise<string>;
  /** The remaining TTL, or undefined when the lease is gone. */
  keepAlive(leaseId: string): Promise<number | undefined>;
  revoke(leaseId: string): Promise<void>;
}

export const SELF_ENDPOINT_BACKOFF: BackoffPolicy = { initialMs: 200, maxMs: 5000, multiplier: 2, jitter: 0.2 };

export type SelfEndpointEvent =
  | { readonly type: "service-created"; readonly clusterIP: string }
  | { readonly type: "service-differs"; readonly reason: string }
  | { readonly type: "published"; readonly key: string; readonly leaseId: string }
  | { readonly type: "withdrawn"; readonly key: string }
  | { readonly type: "retrying"; readonly error: unknown; readonly retryInMs: number };

export interface SelfEndpointOptions {
  readonly kv: KvStore;
  readonly leases: LeasePort;
  readonly layout: RegistryLayout;
  readonly clock: Clock;
  /** The Service, without its cluster IP: `clusterIP(config)` gives it (the DNS Service: the config's dnsClusterIP). */
  readonly service: Omit<ServiceSpec, "clusterIP">;
  readonly clusterIP: (config: ServiceNetworkConfig) => number;
  /** This process's address and the port of each Service port (by index). */
  readonly endpoint: { readonly ip: number; readonly ports: readonly number[] };
  /** Names the slice; one per process (the node's public IP). */
  readonly owner: string;
  readonly ttlSeconds: number;
  readonly random?: () => number;
}

export class SelfEndpoint {
  readonly events = new Emitter<SelfEndpointEvent>();
  private leaseId: string | undefined;
  private published = false;
  private readonly backoff: Backoff;

  constructor(private readonly options: SelfEndpointOptions) {
    this.backoff = new Backoff(SELF_ENDPOINT_BACKOFF, options.random);
  }

  get key(): string {
    const { service, layout, owner } = this.options;
    return layout.slice(service.namespace, service.name, owner);
  }

  /** True while the slice is in etcd as far as this process knows. */
  get isPublished(): boolean {
    return this.published;
  }

  /** The slice's value: a v1 Endpoints object with this process's address and ports. */
  sliceValue(): string {
    const { service, endpoint } = this.options;
    const ports = service.ports.map((p: ServicePort, n) => ({
      ...(p.name === undefined ? {} : { name: p.name }),
      port: endpoint.ports[n] ?? p.targetPort,
      protocol: p.protocol,
    }));
    return JSON.stringify({
      apiVersion: "v1",
      kind: "Endpoints",
      metadata: { name: service.name, namespace: service.namespace },
      subsets: [{ addresses: [{ ip: formatIpv4(endpoint.ip) }], ports }],
    });
  }

  private async ensureService(): Promise<void> {
    const { kv, layout, service } = this.options;
    const existing = await getService({ kv, layout }, service.namespace, service.name);
    if (existing !== undefined) {
      if (existing.spec.selector !== undefined)
        this.events.emit({ type: "service-differs", reason: "it has a selector, so slices are not its endpoints" });
      return;
    }
    const config = await readServiceNetworkConfig({ kv, layout });
    const clusterIP = this.options.clusterIP(config);
    try {
      const deps = {
        kv,
        layout,
        now: () => new Date(this.options.clock.now()),
        random: this.options.random ?? Math.random,
      };
      await createService(deps, { ...service, clusterIP }, config);
      this.events.emit({ type: "service-created", clusterIP: formatIpv4(clusterIP) });
    } catch (error) {
      // Another node's server created it first: fine. Its address taken by another Service: said, and retried.
      if (
        error instanceof TrellisError &&
        error.code === "CONFLICT" &&
        (await getService({ kv, layout }, service.namespace, service.name)) !== undefined
      )
        return;
      throw error;
    }
  }

  private async publish(): Promise<void> {
    const { kv, leases, ttlSeconds } = this.options;
    this.leaseId ??= await leases.grantLease(ttlSeconds);
    const value = this.sliceValue();
    const current = await kv.get(this.key);
    if (current?.value === value && current.lease === this.leaseId) return;
    const compare =
      current === undefined
        ? { key: this.key, absent: true as const }
        : { key: this.key, modRevision: current.modRevision };
    if (!(await kv.commit([compare], [{ put: this.key, value, lease: this.leaseId }]))) {
      throw new TrellisError("CONFLICT", `${this.key} changed while writing it; writing it again`);
    }
    this.published = true;
    this.events.emit({ type: "published", key: this.key, leaseId: this.leaseId });
  }

  /** Keeps the Service and the slice until the signal aborts; then revokes the lease (the slice goes with it). */
  async run(signal: AbortSignal): Promise<void> {
    const { clock, leases, ttlSeconds } = this.options;
    const renewMs = Math.max(1000, Math.floor((ttlSeconds * 1000) / 3));
    while (!signal.aborted) {
      try {
        await this.ensureService();
        await this.publish();
        this.backoff.reset();
        // Renew until the lease is lost (etcd forgot it, or a long partition outlived it): then publish again.
        while (!signal.aborted) {
          await clock.sleep(renewMs, signal);
          if (this.leaseId !== undefined && (await leases.keepAlive(this.leaseId)) === undefined) {
            this.leaseId = undefined;
            this.published = false;
            break;
          }
          await this.publish(); // put back if someone changed or deleted it
        }
      } catch (error) {
        if (isAborted(signal)) break;
        const retryInMs = this.backoff.next();
        this.events.emit({ type: "retrying", error, retryInMs });
        await clock.sleep(retryInMs, signal).catch(() => undefined);
      }
    }
    await this.withdraw();
  }

  private async withdraw(): Promise<void> {
    if (this.leaseId === undefined) return;
    const id = this.leaseId;
    this.leaseId = undefined;
    this.published = false;
    await this.options.leases.revoke(id).catch(() => undefined);
    this.events.emit({ type: "withdrawn", key: this.key });
  }
}
