// The daemon's composition: network config → underlay → lease → peers → dataplane → masquerade → subnet.env →
// ready. It emits what happens as typed events; the entry point (cli/commands/run.ts) logs them. Nothing here exits
// the process, and stopping never removes the datapath.
import { Backoff, type BackoffPolicy } from "../../../lib/src/backoff.js";
import type { Clock } from "../../../lib/src/clock.js";
import { Emitter } from "../../../lib/src/emitter.js";
import { isTrellisError } from "../../../lib/src/errors.js";
import type { FileStore } from "../../../lib/src/files.js";
import { canonical, formatCidr, type Cidr } from "../../../lib/src/ipv4.js";
import type { Kernel } from "../../../lib/src/netlink/kernel.js";
import { formatSubnetEnv, parseSubnetEnv } from "../../../lib/src/subnet-env.js";
import { parseNetworkConfig, type NetworkConfig } from "../config/network-config.js";
import { defaultDeviceName } from "../dataplane/desired.js";
import type { Firewall } from "../dataplane/firewall.js";
import { MasqueradeKeeper, type MasqueradeEvent } from "../dataplane/masquerade.js";
import { Reconciler, type DataplaneEvent } from "../dataplane/reconciler.js";
import { deriveVtepMac } from "../dataplane/vtep-mac.js";
import { LeaseKeeper, type HeldLease, type KeeperEvent } from "../lease/keeper.js";
import type { LeaseAttrs } from "../lease/lease-codec.js";
import type { SubnetRegistry } from "../lease/registry.js";
import { PeerWatcher, type WatcherEvent } from "../lease/watcher.js";
import type { HostNetwork } from "../node/host-network.js";
import type { NodeView } from "../observability/http-server.js";
import type { ReadinessInput } from "../observability/readiness.js";
import { chooseUnderlay, type Underlay, type UnderlayRequest } from "../node/public-ip.js";

/** Waiting for the network config to appear in etcd: 500 ms doubling to 10 s. */
export const CONFIG_WAIT_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 10_000, multiplier: 2, jitter: 0.2 };
/** VXLAN adds 50 bytes of headers (outer Ethernet 14 + IP 20 + UDP 8 + VXLAN 8). */
export const VXLAN_OVERHEAD = 50;

export interface AgentOptions extends UnderlayRequest {
  readonly etcdPrefix: string;
  readonly subnetFile: string;
  readonly leaseTtlSeconds: number;
  readonly ipMasq: boolean;
  /** Default flannel.<VNI>. */
  readonly vxlanDevice?: string | undefined;
  readonly resyncIntervalMs?: number | undefined;
  readonly masqResyncMs?: number | undefined;
}

export interface AgentDeps {
  readonly registry: SubnetRegistry;
  readonly clock: Clock;
  readonly files: FileStore;
  readonly host: HostNetwork;
  readonly kernel: Kernel;
  /** Required when ipMasq is on. */
  readonly firewall?: Firewall | undefined;
  readonly random?: () => number;
}

export type AgentEvent =
  | { readonly type: "config-waiting"; readonly error: unknown; readonly retryInMs: number }
  | { readonly type: "config"; readonly config: NetworkConfig }
  | { readonly type: "underlay"; readonly underlay: Underlay }
  | { readonly type: "subnet-env"; readonly path: string; readonly lease: HeldLease }
  | { readonly type: "ready"; readonly lease: HeldLease; readonly peers: number; readonly startupMs: number }
  | { readonly type: "error"; readonly context: string; readonly error: unknown }
  | { readonly type: "keeper"; readonly event: KeeperEvent }
  | { readonly type: "watcher"; readonly event: WatcherEvent }
  | { readonly type: "dataplane"; readonly event: DataplaneEvent }
  | { readonly type: "masquerade"; readonly event: MasqueradeEvent };

export interface Started {
  readonly config: NetworkConfig;
  readonly underlay: Underlay;
  readonly lease: HeldLease;
  readonly keeper: LeaseKeeper;
  readonly watcher: PeerWatcher;
  readonly reconciler: Reconciler;
  readonly masquerade: MasqueradeKeeper | undefined;
  /** Resolves when every loop has stopped (after the signal aborts). */
  readonly done: Promise<void>;
}

export class Agent {
  readonly events = new Emitter<AgentEvent>();
  private subnetEnvWritten = false;
  /** The running parts, once start() has made them: health, metrics and status read them. */
  private parts: Partial<Pick<Started, "keeper" | "watcher" | "reconciler" | "masquerade">> = {};

  constructor(
    private readonly options: AgentOptions,
    private readonly deps: AgentDeps,
  ) {}

  get hasWrittenSubnetEnv(): boolean {
    return this.subnetEnvWritten;
  }

  /** What readiness is made of, at any moment (all false before start). */
  readinessInput(): ReadinessInput {
    const { keeper, watcher, reconciler, masquerade } = this.parts;
    return {
      leaseHeld: keeper?.current !== undefined,
      subnetEnvWritten: this.subnetEnvWritten,
      dataplaneConverged: reconciler?.converged ?? false,
      watchLive: watcher?.live ?? false,
      masqueradeInstalled: this.options.ipMasq ? (masquerade?.ok ?? false) : undefined,
    };
  }

  /** This node's lease and each peer with whether its entries are in the kernel. */
  nodeView(): Omit<NodeView, "readiness"> {
    const { keeper, watcher, reconciler } = this.parts;
    const lease = keeper?.current;
    const programmed = reconciler?.programmedPeers() ?? new Set<string>();
    const skipped = reconciler?.skippedPeers() ?? new Map<string, string>();
    return {
      lease:
        lease === undefined
          ? null
          : {
              subnet: formatCidr(lease.subnet),
              publicIp: lease.attrs.publicIp,
              reserved: lease.leaseId === undefined,
              expiresAt: lease.expiresAt === undefined ? null : new Date(lease.expiresAt).toISOString(),
            },
      peers: [...(watcher?.peers().values() ?? [])].map((peer) => {
        const subnet = formatCidr(peer.subnet);
        return {
          subnet,
          publicIp: peer.attrs.publicIp,
          programmed: programmed.has(subnet),
          skipped: skipped.get(subnet) ?? null,
        };
      }),
    };
  }

  /** The lease keeper's state and the lease's remaining seconds, for metrics. */
  leaseInfo(): { state: string; secondsToExpiry: number | undefined } {
    const keeper = this.parts.keeper;
    const expiresAt = keeper?.current?.expiresAt;
    return {
      state: keeper?.state ?? "idle",
      secondsToExpiry: expiresAt === undefined ? undefined : Math.max(0, (expiresAt - this.deps.clock.now()) / 1000),
    };
  }

  /** Waits until the network config exists and is valid (etcd down or config missing are retried). */
  async loadConfig(signal: AbortSignal): Promise<NetworkConfig> {
    const backoff = new Backoff(CONFIG_WAIT_BACKOFF, this.deps.random);
    while (true) {
      signal.throwIfAborted();
      try {
        const text = await this.deps.registry.getNetworkConfig();
        if (text === undefined) throw new Error(`no network config at ${this.options.etcdPrefix}/config yet`);
        const config = parseNetworkConfig(text);
        this.events.emit({ type: "config", config });
        return config;
      } catch (error) {
        const retryInMs = backoff.next();
        this.events.emit({ type: "config-waiting", error, retryInMs });
        await this.deps.clock.sleep(retryInMs, signal);
      }
    }
  }

  /** The subnet a previous run of this node wrote to subnet.env, if readable. */
  private async rememberedSubnet(): Promise<Cidr | undefined> {
    try {
      const text = await this.deps.files.read(this.options.subnetFile);
      if (text === undefined) return undefined;
      const parsed = parseSubnetEnv(text);
      return parsed.ok ? canonical(parsed.value.subnet) : undefined;
    } catch (error) {
      if (isTrellisError(error)) return undefined;
      throw error;
    }
  }

  private leaseAttrs(config: NetworkConfig, underlay: Underlay): LeaseAttrs {
    const { backend } = config;
    if (backend.type === "vxlan") {
      return {
        publicIp: underlay.publicIp,
        backendType: "vxlan",
        vni: backend.vni,
        vtepMac: deriveVtepMac(underlay.publicIp, backend.vni),
      };
    }
    return { publicIp: underlay.publicIp, backendType: backend.type };
  }

  mtu(config: NetworkConfig, underlay: Underlay): number {
    return config.backend.type === "vxlan" ? underlay.iface.mtu - VXLAN_OVERHEAD : underlay.iface.mtu;
  }

  async writeSubnetEnv(config: NetworkConfig, underlay: Underlay, lease: HeldLease): Promise<void> {
    const gateway = { ip: lease.subnet.ip + 1, prefixLen: lease.subnet.prefixLen };
    const text = formatSubnetEnv({
      network: config.network,
      subnet: gateway,
      mtu: this.mtu(config, underlay),
      ipMasq: this.options.ipMasq,
    });
    await this.deps.files.writeAtomic(this.options.subnetFile, text);
    this.subnetEnvWritten = true;
    this.events.emit({ type: "subnet-env", path: this.options.subnetFile, lease });
  }

  /**
   * Acquires the lease, waits for the first peer listing, programs the kernel, installs the masquerade rules and
   * writes subnet.env — in that order, so that a pod never starts on a node whose datapath is not ready — then
   * keeps everything up to date until the signal aborts. Resolves once ready.
   */
  async start(signal: AbortSignal): Promise<Started> {
    const startedAt = this.deps.clock.now();
    // The underlay first: a wrong --iface is reported at once, not after waiting for etcd.
    const underlay = chooseUnderlay(
      this.options,
      await this.deps.host.interfaces(),
      await this.deps.host.defaultRouteInterface(),
    );
    this.events.emit({ type: "underlay", underlay });
    const config = await this.loadConfig(signal);

    const keeper = new LeaseKeeper({
      registry: this.deps.registry,
      clock: this.deps.clock,
      config,
      attrs: this.leaseAttrs(config, underlay),
      ttlSeconds: this.options.leaseTtlSeconds,
      preferred: await this.rememberedSubnet(),
      ...(this.deps.random === undefined ? {} : { random: this.deps.random }),
    });
    keeper.events.on((event) => {
      this.events.emit({ type: "keeper", event });
    });
    const watcher = new PeerWatcher({
      registry: this.deps.registry,
      clock: this.deps.clock,
      publicIp: underlay.publicIp,
      ownSubnet: () => keeper.current?.subnet,
      ...(this.deps.random === undefined ? {} : { random: this.deps.random }),
    });
    const reconciler = new Reconciler({
      kernel: this.deps.kernel,
      backend: config.backend,
      deviceName: this.options.vxlanDevice ?? defaultDeviceName(config.backend.vni),
      underlayName: underlay.iface.name,
      localIp: underlay.localIp,
      own: () => {
        const lease = keeper.current;
        return lease === undefined ? undefined : { subnet: lease.subnet, vtepMac: lease.attrs.vtepMac };
      },
      peers: () => watcher.peers().values(),
      ...(this.options.resyncIntervalMs === undefined ? {} : { resyncIntervalMs: this.options.resyncIntervalMs }),
    });
    reconciler.events.on((event) => {
      this.events.emit({ type: "dataplane", event });
    });
    const firewall = this.deps.firewall;
    const masquerade =
      this.options.ipMasq && firewall !== undefined
        ? new MasqueradeKeeper(
            firewall,
            () => {
              const lease = keeper.current;
              return lease === undefined ? undefined : { network: config.network, ownSubnet: lease.subnet };
            },
            this.deps.clock,
            this.options.masqResyncMs,
          )
        : undefined;
    masquerade?.events.on((event) => {
      this.events.emit({ type: "masquerade", event });
    });
    this.parts = { keeper, watcher, reconciler, masquerade };

    watcher.events.on((event) => {
      if (event.type === "own-removed") keeper.notifyOwnKeyGone(event.subnet, "deleted");
      else if (event.type === "own-taken") keeper.notifyOwnKeyGone(event.subnet, "taken");
      else if (event.type === "added" || event.type === "removed" || event.type === "changed")
        reconciler.schedule("peers");
      this.events.emit({ type: "watcher", event });
    });

    const lease = await keeper.acquire(signal);
    // The loops stop with the caller's signal, or when start() itself fails.
    const loopControl = new AbortController();
    const stopLoops = (): void => {
      loopControl.abort();
    };
    signal.addEventListener("abort", stopLoops, { once: true });
    // Peers first: a pass before the first listing would remove every route of a previous run as stale.
    const synced = new Promise<void>((resolve) => {
      const off = watcher.events.on((event) => {
        if (event.type === "synced") {
          off();
          resolve();
        }
      });
    });
    const loops: Promise<void>[] = [
      keeper.run(loopControl.signal),
      watcher.run(loopControl.signal),
      reconciler.run(loopControl.signal),
    ];
    if (masquerade !== undefined) loops.push(masquerade.run(loopControl.signal));
    try {
      await Promise.race([
        synced,
        new Promise<void>((resolve) => {
          loopControl.signal.addEventListener(
            "abort",
            () => {
              resolve();
            },
            { once: true },
          );
        }),
      ]);
      signal.throwIfAborted();
      // Without the right to program the kernel nothing will ever work: say so and stop, rather than retry forever.
      const first = await reconciler.pass("start");
      if (isTrellisError(first.error, "PERMISSION_DENIED")) throw first.error;
      await masquerade?.ensure("start");
      await this.writeSubnetEnv(config, underlay, lease);
    } catch (error) {
      stopLoops();
      await Promise.all(loops);
      throw error;
    }
    this.events.emit({
      type: "ready",
      lease,
      peers: watcher.peers().size,
      startupMs: this.deps.clock.now() - startedAt,
    });

    // A re-acquired lease (possibly another subnet): the device address, routes and rules follow, then the file.
    keeper.events.on((event) => {
      if (event.type !== "acquired" || event.lease === lease) return;
      void (async () => {
        await reconciler.pass("lease");
        await masquerade?.ensure("lease");
        await this.writeSubnetEnv(config, underlay, event.lease);
      })().catch((error: unknown) => {
        this.events.emit({ type: "error", context: "applying the new lease", error });
      });
    });
    const done = Promise.all(loops).then(() => undefined);
    return { config, underlay, lease, keeper, watcher, reconciler, masquerade, done };
  }
}
