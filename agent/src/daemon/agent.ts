// The daemon's composition: network config → underlay → lease keeper → subnet.env → peer watcher. It emits what
// happens as typed events; the entry point (cli/run.ts) logs them. Nothing here exits the process.
import { Backoff, type BackoffPolicy } from "../../../lib/src/backoff.js";
import type { Clock } from "../../../lib/src/clock.js";
import { Emitter } from "../../../lib/src/emitter.js";
import { isTrellisError } from "../../../lib/src/errors.js";
import type { FileStore } from "../../../lib/src/files.js";
import { formatSubnetEnv, parseSubnetEnv } from "../../../lib/src/subnet-env.js";
import { canonical, type Cidr } from "../../../lib/src/ipv4.js";
import { parseNetworkConfig, type NetworkConfig } from "../config/network-config.js";
import { deriveVtepMac } from "../dataplane/vtep-mac.js";
import { LeaseKeeper, type HeldLease, type KeeperEvent } from "../lease/keeper.js";
import type { LeaseAttrs } from "../lease/lease-codec.js";
import type { SubnetRegistry } from "../lease/registry.js";
import { PeerWatcher, type WatcherEvent } from "../lease/watcher.js";
import type { HostNetwork } from "../node/host-network.js";
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
}

export interface AgentDeps {
  readonly registry: SubnetRegistry;
  readonly clock: Clock;
  readonly files: FileStore;
  readonly host: HostNetwork;
  readonly random?: () => number;
}

export type AgentEvent =
  | { readonly type: "config-waiting"; readonly error: unknown; readonly retryInMs: number }
  | { readonly type: "config"; readonly config: NetworkConfig }
  | { readonly type: "underlay"; readonly underlay: Underlay }
  | { readonly type: "subnet-env"; readonly path: string; readonly lease: HeldLease }
  | { readonly type: "error"; readonly context: string; readonly error: unknown }
  | { readonly type: "keeper"; readonly event: KeeperEvent }
  | { readonly type: "watcher"; readonly event: WatcherEvent };

export interface Started {
  readonly config: NetworkConfig;
  readonly underlay: Underlay;
  readonly lease: HeldLease;
  readonly keeper: LeaseKeeper;
  readonly watcher: PeerWatcher;
  /** Resolves when the keeper and watcher loops have stopped (after the signal aborts). */
  readonly done: Promise<void>;
}

export class Agent {
  readonly events = new Emitter<AgentEvent>();

  constructor(
    private readonly options: AgentOptions,
    private readonly deps: AgentDeps,
  ) {}

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
      return { publicIp: underlay.publicIp, backendType: "vxlan", vni: backend.vni, vtepMac: deriveVtepMac(underlay.publicIp, backend.vni) };
    }
    return { publicIp: underlay.publicIp, backendType: backend.type };
  }

  mtu(config: NetworkConfig, underlay: Underlay): number {
    return config.backend.type === "vxlan" ? underlay.iface.mtu - VXLAN_OVERHEAD : underlay.iface.mtu;
  }

  async writeSubnetEnv(config: NetworkConfig, underlay: Underlay, lease: HeldLease): Promise<void> {
    const gateway = { ip: lease.subnet.ip + 1, prefixLen: lease.subnet.prefixLen };
    const text = formatSubnetEnv({ network: config.network, subnet: gateway, mtu: this.mtu(config, underlay), ipMasq: this.options.ipMasq });
    await this.deps.files.writeAtomic(this.options.subnetFile, text);
    this.events.emit({ type: "subnet-env", path: this.options.subnetFile, lease });
  }

  /** Acquires the lease, writes subnet.env and starts the keeper and watcher loops; resolves once the lease is held. */
  async start(signal: AbortSignal): Promise<Started> {
    const config = await this.loadConfig(signal);
    const underlay = chooseUnderlay(this.options, await this.deps.host.interfaces(), await this.deps.host.defaultRouteInterface());
    this.events.emit({ type: "underlay", underlay });

    const keeper = new LeaseKeeper({
      registry: this.deps.registry,
      clock: this.deps.clock,
      config,
      attrs: this.leaseAttrs(config, underlay),
      ttlSeconds: this.options.leaseTtlSeconds,
      preferred: await this.rememberedSubnet(),
      ...(this.deps.random === undefined ? {} : { random: this.deps.random }),
    });
    keeper.events.on((event) => { this.events.emit({ type: "keeper", event }); });
    const watcher = new PeerWatcher({
      registry: this.deps.registry,
      clock: this.deps.clock,
      publicIp: underlay.publicIp,
      ownSubnet: () => keeper.current?.subnet,
      ...(this.deps.random === undefined ? {} : { random: this.deps.random }),
    });
    watcher.events.on((event) => {
      if (event.type === "own-removed") keeper.notifyOwnKeyGone(event.subnet, "deleted");
      if (event.type === "own-taken") keeper.notifyOwnKeyGone(event.subnet, "taken");
      this.events.emit({ type: "watcher", event });
    });

    const lease = await keeper.acquire(signal);
    await this.writeSubnetEnv(config, underlay, lease);
    // A re-acquired lease (possibly another subnet) is written again before anything relies on it.
    keeper.events.on((event) => {
      if (event.type === "acquired" && event.lease !== lease) {
        this.writeSubnetEnv(config, underlay, event.lease).catch((error: unknown) => {
          this.events.emit({ type: "error", context: `writing ${this.options.subnetFile}`, error });
        });
      }
    });
    const done = Promise.all([keeper.run(signal), watcher.run(signal)]).then(() => undefined);
    return { config, underlay, lease, keeper, watcher, done };
  }
}
