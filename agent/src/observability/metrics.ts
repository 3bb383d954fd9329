// The daemon's Prometheus metrics (prom-client): counters and histograms fed from the typed events and the
// instrumentation decorators, gauges read from the live components at scrape time.
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { CniServiceEvent } from "../../../cni-plugin/src/index.js";
import type { AgentEvent } from "../daemon/agent.js";
import { REJECT_KINDS } from "../lease/peer-validation.js";
import { errorLabel } from "./instrument.js";

export interface LiveState {
  /** "held", "acquiring", "lost", … */
  leaseState(): string;
  /** Seconds until the lease expires; undefined for a reservation or without a lease. */
  leaseSecondsToExpiry(): number | undefined;
  peersKnown(): number;
  peersProgrammed(): number;
  /** Peer subnets whose entries are all in the kernel, by address family ("4", "6"). */
  subnetsProgrammed?(): ReadonlyMap<number, number>;
  /** Leases skipped as invalid right now, by reason kind. */
  peersRejected(): ReadonlyMap<string, number>;
  ready(): boolean;
  /** 1 while the network config in etcd differs from the running one (changed, deleted or invalid). */
  configDrift(): string | undefined;
  /** What the proxy has programmed; undefined when it is off. */
  services?(): { services: number; endpoints: number; registryServices: number; pods: number } | undefined;
}

const LEASE_STATES = ["idle", "acquiring", "held", "lost", "stopped"] as const;

export class AgentMetrics {
  readonly registry = new Registry();
  private live: LiveState | undefined;

  private readonly passes = new Counter({
    name: "trellis_reconcile_passes_total",
    help: "Dataplane reconcile passes, by trigger and result.",
    labelNames: ["trigger", "result"],
    registers: [this.registry],
  });
  private readonly repairs = new Counter({
    name: "trellis_repairs_total",
    help: "Kernel entries of ours found missing or changed and restored, by kind (route, neighbor, fdb, address, device) and address family (4, 6).",
    labelNames: ["kind", "family"],
    registers: [this.registry],
  });
  private readonly staleRemoved = new Counter({
    name: "trellis_stale_entries_removed_total",
    help: "Entries of ours that no peer needs, removed (e.g. left by a previous run), by kind and address family.",
    labelNames: ["kind", "family"],
    registers: [this.registry],
  });
  private readonly peerChanges = new Counter({
    name: "trellis_peer_events_total",
    help: "Peer lease changes seen in etcd, by type (added, changed, removed, invalid).",
    labelNames: ["type"],
    registers: [this.registry],
  });
  private readonly netlinkLatency = new Histogram({
    name: "trellis_netlink_operation_seconds",
    help: "Latency of netlink operations, by operation and result.",
    labelNames: ["operation", "result"],
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
    registers: [this.registry],
  });
  private readonly etcdErrors = new Counter({
    name: "trellis_etcd_request_errors_total",
    help: "Failed etcd requests, by operation and error code.",
    labelNames: ["operation", "code"],
    registers: [this.registry],
  });
  private readonly etcdRequests = new Counter({
    name: "trellis_etcd_requests_total",
    help: "etcd requests, by operation.",
    labelNames: ["operation"],
    registers: [this.registry],
  });
  private readonly watchRestarts = new Counter({
    name: "trellis_etcd_watch_restarts_total",
    help: "Times the peer watch broke and was re-established after a full re-list, by reason.",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  private readonly masqResyncs = new Counter({
    name: "trellis_masquerade_resyncs_total",
    help: "Times the masquerade rules were found removed or changed and re-installed.",
    registers: [this.registry],
  });
  private readonly cniRequests = new Histogram({
    name: "trellis_cni_request_seconds",
    help: "CNI operations served for the plugin's shim (docs/decisions/0011), by command and exit code.",
    labelNames: ["command", "exit_code"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    registers: [this.registry],
  });
  private readonly cniFallbacks = new Counter({
    name: "trellis_cni_fallbacks_total",
    help: "Requests the CNI service sent back to the standalone plugin (caller in another namespace, malformed request).",
    registers: [this.registry],
  });
  private readonly proxySyncs = new Histogram({
    name: "trellis_proxy_sync_seconds",
    help: "Service rule transactions (nft -f -), by kind (full: the whole table; partial: the Services that changed) and result.",
    labelNames: ["kind", "result"],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  private readonly programmingLatency = new Histogram({
    name: "trellis_network_programming_seconds",
    help: "From a registry change seen (etcd watch) to the service rules that reflect it in the kernel (kube-proxy's network_programming_duration).",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  private readonly registryInvalid = new Counter({
    name: "trellis_registry_invalid_values_total",
    help: "Service registry values skipped because they could not be used (each key and reason once), by kind of key.",
    labelNames: ["kind"],
    registers: [this.registry],
  });
  private readonly conntrackErrors = new Counter({
    name: "trellis_conntrack_cleanup_errors_total",
    help: "UDP conntrack cleanups (flows to removed endpoints) that failed.",
    registers: [this.registry],
  });
  private readonly cniAbandoned = new Counter({
    name: "trellis_cni_abandoned_total",
    help: "Requests the CNI service dropped undone because their shim gave up waiting (the agent was stalled) and ran the standalone plugin.",
    registers: [this.registry],
  });
  private readonly leaseTransitions = new Counter({
    name: "trellis_lease_events_total",
    help: "Lease keeper events: acquired, renewed, lost, race-lost, retrying, repaired, stale-released.",
    labelNames: ["event"],
    registers: [this.registry],
  });
  private readonly storeResets = new Counter({
    name: "trellis_store_resets_total",
    help: "Times etcd was seen restored empty or rebuilt (revision backwards, cluster ID changed, every lease gone at once).",
    registers: [this.registry],
  });
  private readonly subnetFileWrites = new Counter({
    name: "trellis_subnet_file_writes_total",
    help: "subnet.env written, by why: lease (acquired), missing (deleted), changed (someone edited it).",
    labelNames: ["why"],
    registers: [this.registry],
  });
  private readonly subnetFileFailures = new Counter({
    name: "trellis_subnet_file_failures_total",
    help: "Times subnet.env could not be written or read (each distinct error once until a write succeeds).",
    registers: [this.registry],
  });

  constructor(version: string) {
    new Gauge({
      name: "trellis_build_info",
      help: "Build information; always 1.",
      labelNames: ["version", "node_version"],
      registers: [this.registry],
    }).set({ version, node_version: process.versions.node }, 1);
    const live = (): LiveState | undefined => this.live;
    new Gauge({
      name: "trellis_lease_state",
      help: "1 for the lease keeper's current state, 0 for the others.",
      labelNames: ["state"],
      registers: [this.registry],
      collect() {
        const current = live()?.leaseState() ?? "idle";
        for (const state of LEASE_STATES) this.set({ state }, state === current ? 1 : 0);
      },
    });
    new Gauge({
      name: "trellis_lease_expiry_seconds",
      help: "Seconds until this node's lease expires unless renewed (absent for a reservation).",
      registers: [this.registry],
      collect() {
        const seconds = live()?.leaseSecondsToExpiry();
        this.reset();
        if (seconds !== undefined) this.set(seconds);
      },
    });
    new Gauge({
      name: "trellis_peers_known",
      help: "Peers known from etcd.",
      registers: [this.registry],
      collect() {
        this.set(live()?.peersKnown() ?? 0);
      },
    });
    new Gauge({
      name: "trellis_peers_programmed",
      help: "Peers whose entries are all in the kernel after the last pass.",
      registers: [this.registry],
      collect() {
        this.set(live()?.peersProgrammed() ?? 0);
      },
    });
    new Gauge({
      name: "trellis_peer_subnets_programmed",
      help: "Peer subnets whose entries are all in the kernel after the last pass, by address family (4, 6).",
      labelNames: ["family"],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [family, count] of live()?.subnetsProgrammed?.() ?? new Map<number, number>())
          this.set({ family: String(family) }, count);
      },
    });
    new Gauge({
      name: "trellis_ready",
      help: "1 when /readyz answers 200.",
      registers: [this.registry],
      collect() {
        this.set(live()?.ready() === true ? 1 : 0);
      },
    });
    new Gauge({
      name: "trellis_proxy_services",
      help: "Services whose rules the proxy has programmed in this node's kernel.",
      registers: [this.registry],
      collect() {
        this.set(live()?.services?.()?.services ?? 0);
      },
    });
    new Gauge({
      name: "trellis_proxy_endpoints",
      help: "Endpoints (Service port × backend) programmed in this node's kernel.",
      registers: [this.registry],
      collect() {
        this.set(live()?.services?.()?.endpoints ?? 0);
      },
    });
    new Gauge({
      name: "trellis_registry_services",
      help: "Services in the registry as this agent sees it.",
      registers: [this.registry],
      collect() {
        this.set(live()?.services?.()?.registryServices ?? 0);
      },
    });
    new Gauge({
      name: "trellis_registry_pods",
      help: "Pods (endpoint candidates) in the registry as this agent sees it.",
      registers: [this.registry],
      collect() {
        this.set(live()?.services?.()?.pods ?? 0);
      },
    });
    new Gauge({
      name: "trellis_peer_leases_rejected",
      help: "Leases in etcd skipped as invalid (not programmed), by reason.",
      labelNames: ["reason"],
      registers: [this.registry],
      collect() {
        const counts = live()?.peersRejected() ?? new Map<string, number>();
        for (const reason of REJECT_KINDS) this.set({ reason }, counts.get(reason) ?? 0);
      },
    });
    new Gauge({
      name: "trellis_network_config_drift",
      help: "1 while the network config in etcd differs from the one this agent runs with, by kind (changed, deleted, invalid).",
      labelNames: ["kind"],
      registers: [this.registry],
      collect() {
        const drift = live()?.configDrift();
        for (const kind of ["changed", "deleted", "invalid"]) this.set({ kind }, drift === kind ? 1 : 0);
      },
    });
  }

  /** Connects the scrape-time gauges to the running daemon. */
  attach(live: LiveState): void {
    this.live = live;
  }

  observeNetlink(operation: string, seconds: number, error: unknown): void {
    this.netlinkLatency.observe({ operation, result: error === undefined ? "ok" : "error" }, seconds);
  }

  observeCni(event: CniServiceEvent): void {
    if (event.type === "served")
      this.cniRequests.observe({ command: event.command, exit_code: String(event.exitCode) }, event.ms / 1000);
    else if (event.type === "fallback") this.cniFallbacks.inc();
    else this.cniAbandoned.inc();
  }

  observeEtcd(operation: string, _seconds: number, error: unknown): void {
    this.etcdRequests.inc({ operation });
    if (error !== undefined) this.etcdErrors.inc({ operation, code: errorLabel(error) });
  }

  record(event: AgentEvent): void {
    switch (event.type) {
      case "services": {
        const e = event.event;
        if (e.type === "proxy" && e.event.type === "synced") {
          this.proxySyncs.observe({ kind: e.event.full ? "full" : "partial", result: "ok" }, e.event.durationMs / 1000);
          if (e.event.latencyMs !== undefined) this.programmingLatency.observe(e.event.latencyMs / 1000);
        } else if (e.type === "proxy" && e.event.type === "error")
          this.proxySyncs.observe({ kind: "full", result: "error" }, 0);
        else if (e.type === "proxy" && e.event.type === "conntrack-error") this.conntrackErrors.inc();
        else if (e.type === "invalid") this.registryInvalid.inc({ kind: e.kind });
        return;
      }
      case "dataplane": {
        const e = event.event;
        if (e.type === "pass") this.passes.inc({ trigger: e.trigger, result: e.converged ? "converged" : "failed" });
        else if (e.type === "repaired") this.repairs.inc({ kind: e.kind, family: String(e.family) });
        else if (e.type === "device" && e.repair) this.repairs.inc({ kind: "device", family: String(e.family) });
        else if (e.type === "stale-removed") this.staleRemoved.inc({ kind: e.kind, family: String(e.family) });
        return;
      }
      case "watcher": {
        const e = event.event;
        if (e.type === "added" || e.type === "changed" || e.type === "removed" || e.type === "invalid")
          this.peerChanges.inc({ type: e.type });
        else if (e.type === "broken") this.watchRestarts.inc({ reason: e.reason });
        else if (e.type === "store-reset") this.storeResets.inc();
        return;
      }
      case "subnet-file": {
        const e = event.event;
        if (e.type === "written") this.subnetFileWrites.inc({ why: e.why });
        else this.subnetFileFailures.inc();
        return;
      }
      case "masquerade":
        if (event.event.type === "applied" && event.event.reason === "resync") this.masqResyncs.inc();
        return;
      case "keeper": {
        const e = event.event;
        if (e.type !== "state") this.leaseTransitions.inc({ event: e.type });
        return;
      }
      default:
        return;
    }
  }

  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
