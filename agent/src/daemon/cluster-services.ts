// The agent's Service part (kube-proxy's role): the registry mirrored from etcd into the catalog, the proxy that
// keeps the kernel's service rules equal to it, and the publisher that makes this node's pods endpoints. The daemon
// composes it beside the overlay and feeds it what only the overlay knows: the pod network, which nodes hold a
// lease, this node's lease.
import type { Clock } from "#lib/clock.js";
import type { CommandRunner } from "#lib/command.js";
import { Emitter } from "#lib/emitter.js";
import type { Cidr } from "#lib/ipv4.js";
import type { KvStore } from "../kv/kv-store.js";
import { PrefixMirror, type MirrorEvent } from "../kv/prefix-mirror.js";
import { ConntrackTool, NftProxyTable, type Conntrack, type ProxyTable } from "../proxy/nft-proxy-table.js";
import { ServiceProxy, type ProxyEvent } from "../proxy/service-proxy.js";
import { ServiceCatalog } from "../services/catalog.js";
import {
  PodPublisher,
  type PodPublisherEvent,
  type PodRecordSource,
  type PublishedNode,
} from "../services/pod-publisher.js";
import type { RegistryLayout } from "../services/registry-layout.js";

export type ServicesEvent =
  | { readonly type: "registry"; readonly event: MirrorEvent }
  | { readonly type: "proxy"; readonly event: ProxyEvent }
  | { readonly type: "pods"; readonly event: PodPublisherEvent }
  | { readonly type: "invalid"; readonly key: string; readonly kind: string; readonly reason: string };

export interface ClusterServicesDeps {
  readonly kv: KvStore;
  readonly layout: RegistryLayout;
  readonly clock: Clock;
  readonly podRecords: PodRecordSource;
  /** The real nft and conntrack when omitted. */
  readonly table?: ProxyTable;
  readonly conntrack?: Conntrack;
  readonly commands: CommandRunner;
}

/** What the overlay tells the Service part. */
export interface OverlayView {
  readonly podNetwork: () => Cidr | undefined;
  /** Whether a node, by its lease key ("172.30.5.0-24"), holds a lease. */
  readonly leased: (node: string) => boolean;
  /** The peer leases were listed completely at least once. */
  readonly peersSynced: () => boolean;
  readonly ownNode: () => PublishedNode | undefined;
}

export class ClusterServices {
  readonly events = new Emitter<ServicesEvent>();
  readonly catalog: ServiceCatalog;
  readonly mirror: PrefixMirror;
  readonly proxy: ServiceProxy;
  readonly publisher: PodPublisher;
  private readonly reported = new Map<string, string>();
  private readonly layout: RegistryLayout;

  constructor(deps: ClusterServicesDeps, overlay: OverlayView) {
    this.layout = deps.layout;
    this.catalog = new ServiceCatalog(deps.layout);
    // The cluster IP allocation keys are the admin commands' business, a third of the registry: not listed.
    this.mirror = new PrefixMirror({
      kv: deps.kv,
      prefix: deps.layout.all,
      skip: [deps.layout.clusterIps],
      clock: deps.clock,
    });
    this.proxy = new ServiceProxy({
      catalog: this.catalog,
      table: deps.table ?? new NftProxyTable(deps.commands),
      conntrack: deps.conntrack ?? new ConntrackTool(deps.commands),
      clock: deps.clock,
      podNetwork: overlay.podNetwork,
      leased: overlay.leased,
      // Nothing is written before both the registry and the leases were read completely.
      ready: () => this.mirror.synced && overlay.peersSynced(),
    });
    this.publisher = new PodPublisher({
      kv: deps.kv,
      layout: deps.layout,
      source: deps.podRecords,
      clock: deps.clock,
      node: overlay.ownNode,
    });
    this.mirror.events.on((event) => {
      if (event.type === "changes") {
        const dirty = new Set<string>();
        for (const change of event.changes) for (const key of this.catalog.apply(change)) dirty.add(key);
        this.proxy.markDirty(dirty);
        this.reportProblems();
      }
      this.events.emit({ type: "registry", event });
    });
    this.proxy.events.on((event) => {
      this.events.emit({ type: "proxy", event });
    });
    this.publisher.events.on((event) => {
      this.events.emit({ type: "pods", event });
    });
  }

  /** One event per bad key and reason, and none again until it changes. */
  private reportProblems(): void {
    for (const [key, reason] of this.catalog.problems) {
      if (this.reported.get(key) === reason) continue;
      this.reported.set(key, reason);
      this.events.emit({ type: "invalid", key, kind: this.layout.classify(key)?.kind ?? "other", reason });
    }
    for (const key of [...this.reported.keys()]) if (!this.catalog.problems.has(key)) this.reported.delete(key);
  }

  /** A node's lease came or went: its pods joined or left every Service they back. */
  nodeChanged(node: string): void {
    this.proxy.markDirty(this.catalog.servicesOnNode(node));
  }

  /** This node's lease changed: its pods are published again (under the new lease), every Service rechecked. */
  ownLeaseChanged(): void {
    this.publisher.notify();
    this.proxy.markAll();
  }

  /** The CNI service wired or removed a pod: publish at once rather than at the next rescan. */
  podsChanged(): void {
    this.publisher.notify();
  }

  /** Why Services are not served as the registry says, or undefined when they are. */
  notReadyReason(): string | undefined {
    if (!this.mirror.synced) return "service registry not listed yet";
    if (!this.proxy.hasSynced) return "service rules not programmed yet";
    if (this.proxy.failing)
      return "service rules could not be programmed: the last nft transaction failed (see the log)";
    return undefined;
  }

  async run(signal: AbortSignal): Promise<void> {
    await Promise.all([this.mirror.run(signal), this.proxy.run(signal), this.publisher.run(signal)]);
  }
}
