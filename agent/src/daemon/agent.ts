// The daemon's composition: network config → underlay → lease → peers → dataplane → masquerade → subnet.env →
// ready, then keeps each part equal to what it should be (the config watched, subnet.env re-checked, the lease
// repaired). It emits what happens as typed events; the entry point (cli/commands/run.ts) logs them. Nothing here
// exits the process, and stopping never removes the datapath.
import { Backoff, type BackoffPolicy } from "#lib/backoff.js";
import type { Clock } from "#lib/clock.js";
import { Emitter } from "#lib/emitter.js";
import { errorMessage, InvalidArgumentError, InvalidConfigError, isTrellisError } from "#lib/errors.js";
import type { FileStore } from "#lib/files.js";
import { canonical, formatCidr, type Cidr } from "#lib/ipv4.js";
import { canonical6, formatCidr6, type Cidr6 } from "#lib/ipv6.js";
import type { IpFamily, Kernel } from "#lib/netlink/kernel.js";
import { isInterfaceName, vxlanDevice6Name, vxlanDeviceName } from "#lib/names.js";
import { formatSubnetEnv, parseSubnetEnv } from "#lib/subnet-env.js";
import { parseNetworkConfig, type NetworkConfig } from "../config/network-config.js";
import { linkKindName, type Backend, type NodeContext, type OwnLease } from "../dataplane/backends/backend.js";
import { backendFor } from "../dataplane/backends/registry.js";
import type { Firewall } from "../dataplane/firewall.js";
import { MasqueradeKeeper, type MasqueradeEvent } from "../dataplane/masquerade.js";
import type { MasqueradeInput } from "../dataplane/masquerade-rules.js";
import { ForeignLinkError, Reconciler, type DataplaneEvent } from "../dataplane/reconciler.js";
import { LeaseKeeper, type HeldLease, type KeeperEvent } from "../lease/keeper.js";
import { configKey, type LeaseAttrs } from "../lease/lease-codec.js";
import type { LeaseShape } from "../lease/peer-validation.js";
import type { SubnetRegistry } from "../lease/registry.js";
import { PeerWatcher, type WatcherEvent } from "../lease/watcher.js";
import type { HostNetwork } from "../node/host-network.js";
import type { Peer } from "../lease/peers.js";
import type { NodeView } from "../observability/http-server.js";
import type { ReadinessInput } from "../observability/readiness.js";
import {
  chooseUnderlay,
  chooseUnderlay6,
  missingUnderlay6,
  type Underlay,
  type Underlay6,
  type UnderlayRequest,
} from "../node/public-ip.js";
import { subnetKeyName } from "../lease/lease-codec.js";
import { ClusterServices, type ClusterServicesDeps, type ServicesEvent } from "./cluster-services.js";
import { ConfigWatcher, describeDrift, type ConfigDrift } from "./config-watcher.js";
import { SubnetFileKeeper, type SubnetFileEvent } from "./subnet-file.js";

/** Waiting for the network config to appear in etcd: 500 ms doubling to 10 s. */
export const CONFIG_WAIT_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 10_000, multiplier: 2, jitter: 0.2 };

export interface AgentOptions extends UnderlayRequest {
  readonly etcdPrefix: string;
  readonly subnetFile: string;
  readonly leaseTtlSeconds: number;
  readonly ipMasq: boolean;
  /** Default flannel.<VNI>. */
  readonly vxlanDevice?: string | undefined;
  readonly resyncIntervalMs?: number | undefined;
  readonly masqResyncMs?: number | undefined;
  /** After a store reset, how long peers missing from etcd keep their routes. */
  readonly storeResetGraceMs?: number | undefined;
  /** How often subnet.env is compared with the lease. */
  readonly subnetFileCheckMs?: number | undefined;
}

export interface AgentDeps {
  readonly registry: SubnetRegistry;
  readonly clock: Clock;
  readonly files: FileStore;
  readonly host: HostNetwork;
  readonly kernel: Kernel;
  /** Required when ipMasq is on. */
  readonly firewall?: Firewall | undefined;
  /** The Service part (the proxy, pods as endpoints); omitted: the agent does the overlay only. */
  readonly services?: ClusterServicesDeps | undefined;
  readonly random?: () => number;
}

export type AgentEvent =
  | { readonly type: "config-waiting"; readonly error: unknown; readonly retryInMs: number }
  | { readonly type: "config"; readonly config: NetworkConfig }
  | { readonly type: "underlay"; readonly underlay: Underlay }
  /** On an IPv6 network: the node's IPv6 underlay, or undefined (its IPv6 pods are tunnelled over IPv4). */
  | { readonly type: "underlay6"; readonly underlay6: Underlay6 | undefined; readonly iface: string }
  | { readonly type: "subnet-file"; readonly event: SubnetFileEvent; readonly lease: HeldLease | undefined }
  | { readonly type: "config-drift"; readonly drift: ConfigDrift; readonly description: string }
  | { readonly type: "config-in-sync"; readonly key: string }
  | { readonly type: "ready"; readonly lease: HeldLease; readonly peers: number; readonly startupMs: number }
  | { readonly type: "error"; readonly context: string; readonly error: unknown }
  | { readonly type: "keeper"; readonly event: KeeperEvent }
  | { readonly type: "watcher"; readonly event: WatcherEvent }
  | { readonly type: "dataplane"; readonly event: DataplaneEvent }
  | { readonly type: "masquerade"; readonly event: MasqueradeEvent }
  | { readonly type: "services"; readonly event: ServicesEvent };

export interface Started {
  readonly config: NetworkConfig;
  readonly underlay: Underlay;
  /** The IPv6 underlay on an IPv6 network, when the node has one. */
  readonly underlay6: Underlay6 | undefined;
  readonly lease: HeldLease;
  readonly keeper: LeaseKeeper;
  readonly watcher: PeerWatcher;
  readonly reconciler: Reconciler;
  readonly masquerade: MasqueradeKeeper | undefined;
  readonly configWatcher: ConfigWatcher;
  readonly subnetFile: SubnetFileKeeper;
  readonly services: ClusterServices | undefined;
  /** Resolves when every loop has stopped (after the signal aborts). */
  readonly done: Promise<void>;
}

export class Agent {
  readonly events = new Emitter<AgentEvent>();
  /** Why the network config could not be loaded yet (until it is). */
  private configProblem: string | undefined;
  /** The address families of the network the agent runs (IPv4 until the config is read). */
  private families: readonly IpFamily[] = [4];
  /** The running parts, once start() has made them: health, metrics and status read them. */
  private parts: Partial<
    Pick<Started, "keeper" | "watcher" | "reconciler" | "masquerade" | "configWatcher" | "subnetFile" | "services">
  > = {};

  constructor(
    private readonly options: AgentOptions,
    private readonly deps: AgentDeps,
  ) {
    this.configProblem = `network config at ${this.configKey} not read yet (asking etcd)`;
  }

  private get configKey(): string {
    return configKey(this.options.etcdPrefix);
  }

  /** What readiness is made of, at any moment. */
  readinessInput(): ReadinessInput {
    const { keeper, watcher, reconciler, masquerade, configWatcher, subnetFile, services } = this.parts;
    const drift = configWatcher?.drift;
    const warnings: string[] = [];
    if (drift !== undefined && drift.kind !== "changed") warnings.push(describeDrift(drift, this.configKey));
    const rejected = watcher?.rejected().size ?? 0;
    if (rejected > 0) warnings.push(`${rejected} peer lease(s) skipped as invalid (see \`trellis-agent status\`)`);
    const graceUntil = watcher?.storeResetGraceUntil;
    if (graceUntil !== undefined)
      warnings.push(
        `etcd store reset: peers missing from etcd keep their routes until ${new Date(graceUntil).toISOString()}`,
      );
    const leaseError = keeper?.lastError;
    return {
      configProblem: this.configProblem,
      configChanged: drift?.kind === "changed" ? describeDrift(drift, this.configKey) : undefined,
      leaseHeld: keeper?.current !== undefined,
      leaseProblem: leaseError === undefined ? undefined : errorMessage(leaseError),
      dataplaneConverged: reconciler?.converged ?? false,
      dataplaneProblem: reconciler?.problem,
      watchLive: watcher?.live ?? false,
      masqueradeInstalled: this.options.ipMasq ? (masquerade?.ok ?? false) : undefined,
      masqueradeProblem: masquerade?.problem,
      subnetFile: subnetFile?.state ?? { state: "pending" },
      servicesProblem:
        this.deps.services === undefined
          ? undefined
          : services === undefined
            ? "service registry not listed yet"
            : services.notReadyReason(),
      warnings: [
        ...warnings,
        ...(services === undefined || services.catalog.problems.size === 0
          ? []
          : [`${services.catalog.problems.size} registry value(s) skipped as invalid (see the agent log)`]),
      ],
    };
  }

  /** What the proxy has programmed, for metrics and `status`. */
  servicesView(): { services: number; endpoints: number; registryServices: number; pods: number } | undefined {
    const services = this.parts.services;
    if (services === undefined) return undefined;
    return {
      services: services.proxy.programmedServices(),
      endpoints: services.proxy.programmedEndpoints(),
      registryServices: services.catalog.serviceCount,
      pods: services.catalog.podCount,
    };
  }

  /** The CNI service wired or removed a pod: its record is published at once. */
  podsChanged(): void {
    this.parts.services?.podsChanged();
  }

  /**
   * This node's lease and each peer's subnet of each family the network has, with whether its entries are in the
   * kernel (or why not).
   */
  nodeView(): Omit<NodeView, "readiness"> {
    const { keeper, watcher } = this.parts;
    const lease = keeper?.current;
    return {
      lease:
        lease === undefined
          ? null
          : {
              subnet: formatCidr(lease.subnet),
              subnet6: lease.subnet6 === undefined ? null : formatCidr6(lease.subnet6),
              publicIp: lease.attrs.publicIp,
              publicIpv6: lease.attrs.publicIpv6 ?? null,
              reserved: lease.leaseId === undefined,
              expiresAt: lease.expiresAt === undefined ? null : new Date(lease.expiresAt).toISOString(),
            },
      peers: [
        ...[...(watcher?.peers().values() ?? [])].flatMap((peer) => this.peerEntries(peer)),
        // Leases that never become peers, with why: `status` shows them as skipped.
        ...[...(watcher?.rejected().values() ?? [])].flatMap((rejected) => {
          const skipped = `invalid lease: ${rejected.reason}`;
          const publicIp = rejected.publicIp ?? "";
          return [
            ...(this.families.includes(4)
              ? [{ family: 4 as const, subnet: formatCidr(rejected.subnet), publicIp, programmed: false, skipped }]
              : []),
            ...(this.families.includes(6) && rejected.subnet6 !== undefined
              ? [{ family: 6 as const, subnet: formatCidr6(rejected.subnet6), publicIp, programmed: false, skipped }]
              : []),
          ];
        }),
      ],
    };
  }

  /** A peer's entries in the node view: one per family the network has (IPv6 only for a peer with an IPv6 subnet). */
  private peerEntries(peer: Peer): NodeView["peers"][number][] {
    const reconciler = this.parts.reconciler;
    const programmed = reconciler?.programmedPeers() ?? new Set<string>();
    const entries: NodeView["peers"][number][] = [];
    if (this.families.includes(4)) {
      const subnet = formatCidr(peer.subnet);
      entries.push({
        family: 4,
        subnet,
        publicIp: peer.attrs.publicIp,
        programmed: programmed.has(subnet),
        skipped: reconciler?.skippedPeers(4).get(subnet) ?? null,
      });
    }
    if (this.families.includes(6) && peer.subnet6 !== undefined) {
      const subnet = formatCidr6(peer.subnet6);
      entries.push({
        family: 6,
        subnet,
        publicIp: peer.attrs.publicIpv6 ?? peer.attrs.publicIp,
        programmed: programmed.has(subnet),
        skipped: reconciler?.skippedPeers(6).get(subnet) ?? null,
      });
    }
    return entries;
  }

  /**
   * For metrics: peers whose entries are all in the kernel (in every plane that serves them), and peer subnets
   * programmed by family.
   */
  programmedCounts(): { peers: number; byFamily: ReadonlyMap<IpFamily, number> } {
    const byFamily = new Map<IpFamily, number>(this.families.map((family) => [family, 0]));
    let peers = 0;
    for (const peer of this.parts.watcher?.peers().values() ?? []) {
      const entries = this.peerEntries(peer);
      for (const entry of entries)
        if (entry.programmed) byFamily.set(entry.family, (byFamily.get(entry.family) ?? 0) + 1);
      if (
        entries.length > 0 &&
        entries.every((entry) => entry.programmed || entry.skipped !== null) &&
        entries.some((e) => e.programmed)
      )
        peers += 1;
    }
    return { peers, byFamily };
  }

  /** Peers known (programmed or not) and leases rejected by reason kind, for metrics. */
  peerCounts(): { known: number; rejected: ReadonlyMap<string, number> } {
    const rejected = new Map<string, number>();
    for (const lease of this.parts.watcher?.rejected().values() ?? [])
      rejected.set(lease.kind, (rejected.get(lease.kind) ?? 0) + 1);
    return { known: this.parts.watcher?.peers().size ?? 0, rejected };
  }

  configDriftKind(): string | undefined {
    return this.parts.configWatcher?.drift?.kind;
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
        if (text === undefined)
          throw new Error(`no network config at ${this.configKey} yet: set one with \`trellis-agent network set\``);
        const config = parseNetworkConfig(text);
        this.configProblem = undefined;
        this.events.emit({ type: "config", config });
        return config;
      } catch (error) {
        this.configProblem = isTrellisError(error, "INVALID_CONFIG")
          ? `network config at ${this.configKey} is invalid: ${errorMessage(error)}`
          : isTrellisError(error, "ETCD_UNAVAILABLE") ||
              isTrellisError(error, "ETCD_AUTH") ||
              isTrellisError(error, "ETCD_FAILED")
            ? `network config at ${this.configKey} cannot be read: ${errorMessage(error)}`
            : errorMessage(error);
        const retryInMs = backoff.next();
        this.events.emit({ type: "config-waiting", error, retryInMs });
        await this.deps.clock.sleep(retryInMs, signal);
      }
    }
  }

  /** The subnets (of each family) a previous run of this node wrote to subnet.env, if readable. */
  private async rememberedSubnets(): Promise<{ subnet?: Cidr; subnet6?: Cidr6 }> {
    try {
      const text = await this.deps.files.read(this.options.subnetFile);
      if (text === undefined) return {};
      const parsed = parseSubnetEnv(text);
      if (!parsed.ok) return {};
      const { subnet, ipv6Subnet } = parsed.value;
      return {
        ...(subnet === undefined ? {} : { subnet: canonical(subnet) }),
        ...(ipv6Subnet === undefined ? {} : { subnet6: canonical6(ipv6Subnet) }),
      };
    } catch (error) {
      if (isTrellisError(error)) return {};
      throw error;
    }
  }

  /**
   * The pods' MTU: the underlay's less the backend's encapsulation — of the plane that needs the most, since a pod's
   * one interface carries both families.
   */
  mtu(backend: Backend, node: NodeContext): number {
    return node.underlay.mtu - Math.max(0, ...node.families.map((family) => backend.plane(family, node).mtuOverhead));
  }

  subnetEnvText(config: NetworkConfig, backend: Backend, node: NodeContext, lease: HeldLease): string {
    const { subnet, subnet6 } = lease;
    return formatSubnetEnv({
      ...(config.enableIPv4
        ? { network: config.network, subnet: { ip: subnet.ip + 1, prefixLen: subnet.prefixLen } }
        : {}),
      ...(config.ipv6 === undefined || subnet6 === undefined
        ? {}
        : { ipv6Network: config.ipv6.network, ipv6Subnet: { ip: subnet6.ip + 1n, prefixLen: subnet6.prefixLen } }),
      mtu: this.mtu(backend, node),
      ipMasq: this.options.ipMasq,
    });
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
    if (this.options.vxlanDevice === underlay.iface.name) {
      throw new InvalidArgumentError(
        "--vxlan-device",
        this.options.vxlanDevice,
        "is the underlay interface; name a vxlan device of its own (default flannel.<VNI>)",
      );
    }
    const config = await this.loadConfig(signal);
    const backend = backendFor(config.backend);
    const families = networkFamilies(config);
    this.families = families;
    // The IPv6 underlay, on an IPv6 network: without one vxlan tunnels IPv6 pods over IPv4; host-gw cannot route them.
    const underlay6 = config.ipv6 === undefined ? undefined : chooseUnderlay6(this.options, underlay.iface);
    if (config.ipv6 !== undefined) {
      if (underlay6 === undefined && backend.needsUnderlay6)
        throw missingUnderlay6(this.options, underlay.iface, backend.type);
      this.events.emit({ type: "underlay6", underlay6, iface: underlay.iface.name });
    }
    const deviceName = this.options.vxlanDevice ?? vxlanDeviceName(config.backend.vni);
    const device6Name = vxlanDevice6Name(config.backend.vni);
    const random = this.deps.random === undefined ? {} : { random: this.deps.random };
    const attrs: LeaseAttrs = backend.leaseAttrs({
      publicIp: underlay.publicIp,
      publicIpv6: underlay6?.publicIpv6,
      families,
    });
    const underlayLink = {
      name: underlay.iface.name,
      index: underlay.iface.index,
      mtu: underlay.iface.mtu,
      localIp: underlay.localIp,
      addresses: [],
      ...(underlay6 === undefined ? {} : { localIp6: underlay6.localIp6 }),
    };
    /** This node for the backend; before a lease is held, with the network in the lease's place. */
    const node = (lease: HeldLease | undefined): NodeContext => ({
      deviceName,
      device6Name,
      underlay: underlayLink,
      own: ownLease(lease ?? { subnet: config.network, subnet6: config.ipv6?.network, attrs }),
      families,
    });
    // Someone else's link where one of our devices goes: refused before anything is registered in etcd.
    for (const family of families) {
      const name = backend.plane(family, node(undefined)).device?.name;
      if (name === undefined) continue;
      if (name === device6Name && !isInterfaceName(name))
        throw new InvalidConfigError(
          "Backend.VNI",
          config.backend.vni,
          `makes the IPv6 device name ${name}, longer than 15 bytes: use a VNI below 10000 on an IPv6 network`,
        );
      const existing = await this.deps.kernel.getLink(name);
      if (existing !== undefined && existing.kind !== backend.device?.kind)
        throw new ForeignLinkError(
          name,
          linkKindName(existing),
          backend.device?.kind,
          name === deviceName ? undefined : "remove it",
        );
    }
    const running = leaseShape(config);
    const remembered = await this.rememberedSubnets();

    const keeper = new LeaseKeeper({
      registry: this.deps.registry,
      clock: this.deps.clock,
      config,
      attrs,
      ttlSeconds: this.options.leaseTtlSeconds,
      preferred: remembered.subnet,
      preferred6: remembered.subnet6,
      ...random,
    });
    keeper.events.on((event) => {
      this.events.emit({ type: "keeper", event });
    });
    const watcher = new PeerWatcher({
      registry: this.deps.registry,
      clock: this.deps.clock,
      publicIp: underlay.publicIp,
      ownLease: () => keeper.current,
      ownVtepMac: attrs.vtepMac,
      ownVtepMac6: attrs.v6?.vtepMac,
      shapes: [running],
      ...(this.options.storeResetGraceMs === undefined ? {} : { resetGraceMs: this.options.storeResetGraceMs }),
      ...random,
    });
    const reconciler = new Reconciler({
      kernel: this.deps.kernel,
      clock: this.deps.clock,
      backend,
      deviceName,
      device6Name,
      underlayName: underlay.iface.name,
      localIp: underlay.localIp,
      localIp6: underlay6?.localIp6,
      enableIPv4: config.enableIPv4,
      own: () => {
        const lease = keeper.current;
        return lease === undefined ? undefined : ownLease(lease);
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
              return lease === undefined ? undefined : masqueradeInput(config, lease);
            },
            this.deps.clock,
            this.options.masqResyncMs,
          )
        : undefined;
    masquerade?.events.on((event) => {
      this.events.emit({ type: "masquerade", event });
    });
    const configWatcher = new ConfigWatcher(this.deps.registry, this.deps.clock, config, this.deps.random);
    configWatcher.events.on((event) => {
      if (event.type === "drift") {
        // While the network moves, peers already on the new one stay reachable from this node.
        watcher.setShapes(event.drift.kind === "changed" ? [running, leaseShape(event.drift.config)] : [running]);
        this.events.emit({
          type: "config-drift",
          drift: event.drift,
          description: describeDrift(event.drift, this.configKey),
        });
      } else if (event.type === "in-sync") {
        watcher.setShapes([running]);
        this.events.emit({ type: "config-in-sync", key: this.configKey });
      }
    });
    const subnetFile = new SubnetFileKeeper(
      this.deps.files,
      this.deps.clock,
      this.options.subnetFile,
      this.options.subnetFileCheckMs,
    );
    subnetFile.events.on((event) => {
      this.events.emit({ type: "subnet-file", event, lease: keeper.current });
    });
    // The peers' lease keys by their IPv4 half ("172.30.5.0-24"), as pods are published: a dual-stack peer's own key
    // has its IPv6 half too.
    const peerNodes = new Set<string>();
    const services =
      this.deps.services === undefined
        ? undefined
        : new ClusterServices(this.deps.services, {
            podNetwork: () => config.network,
            // Lease keys ("172.30.5.0-24") against what the overlay holds: our lease and the peers'.
            leased: (node) => {
              const own = keeper.current;
              return (own !== undefined && subnetKeyName(own.subnet) === node) || peerNodes.has(node);
            },
            peersSynced: () => watcher.hasSynced,
            ownNode: () => {
              const own = keeper.current;
              return own === undefined
                ? undefined
                : { key: subnetKeyName(own.subnet), subnet: own.subnet, leaseId: own.leaseId };
            },
          });
    services?.events.on((event) => {
      this.events.emit({ type: "services", event });
    });
    this.parts = { keeper, watcher, reconciler, masquerade, configWatcher, subnetFile, services };

    watcher.events.on((event) => {
      if (event.type === "own-removed") keeper.notifyOwnKeyGone(event, "deleted");
      else if (event.type === "own-changed") keeper.notifyOwnKeyChanged(event.lease);
      else if (event.type === "added" || event.type === "removed" || event.type === "changed") {
        if (event.type === "changed") peerNodes.delete(subnetKeyName(event.previous.subnet));
        if (event.type === "removed") peerNodes.delete(subnetKeyName(event.peer.subnet));
        else peerNodes.add(subnetKeyName(event.peer.subnet));
        reconciler.schedule("peers");
        services?.nodeChanged(subnetKeyName(event.peer.subnet));
      }
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
      configWatcher.run(loopControl.signal),
    ];
    if (masquerade !== undefined) loops.push(masquerade.run(loopControl.signal));
    // The proxy writes nothing before the registry and the leases were listed completely (cluster-services.ts).
    if (services !== undefined) loops.push(services.run(loopControl.signal));
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
      // Without the right to program the kernel, or with someone else's link in our device's place, nothing will
      // work: say so and stop, rather than retry forever.
      const first = await reconciler.pass("start");
      if (isTrellisError(first.error, "PERMISSION_DENIED") || first.error instanceof ForeignLinkError)
        throw first.error;
      await masquerade?.ensure("start");
      // A file that cannot be written stops the start (exit 7): a pod would get a missing or stale lease.
      await subnetFile.set(this.subnetEnvText(config, backend, node(keeper.current ?? lease), keeper.current ?? lease));
    } catch (error) {
      stopLoops();
      await Promise.all(loops);
      throw error;
    }
    loops.push(subnetFile.run(loopControl.signal));
    this.events.emit({
      type: "ready",
      lease: keeper.current ?? lease,
      peers: watcher.peers().size,
      startupMs: this.deps.clock.now() - startedAt,
    });

    // A re-acquired lease (possibly another subnet): the device address, routes and rules follow, then the file
    // (its writes are serialised: the newest lease wins).
    keeper.events.on((event) => {
      if (event.type !== "acquired") return;
      services?.ownLeaseChanged();
      void (async () => {
        await reconciler.pass("lease");
        await masquerade?.ensure("lease");
        if (keeper.current === event.lease)
          await subnetFile.set(this.subnetEnvText(config, backend, node(event.lease), event.lease));
      })().catch((error: unknown) => {
        this.events.emit({ type: "error", context: "applying the new lease", error });
      });
    });
    const done = Promise.all(loops).then(() => undefined);
    return {
      config,
      underlay,
      underlay6,
      lease,
      keeper,
      watcher,
      reconciler,
      masquerade,
      configWatcher,
      subnetFile,
      services,
      done,
    };
  }
}

/** The planes a network has: IPv4 unless it is IPv6-only, IPv6 with EnableIPv6. */
function networkFamilies(config: NetworkConfig): IpFamily[] {
  return [...(config.enableIPv4 ? [4 as const] : []), ...(config.ipv6 === undefined ? [] : [6 as const])];
}

/** The leases a network's peers may hold. */
function leaseShape(config: NetworkConfig): LeaseShape {
  return {
    network: config.network,
    subnetLen: config.subnetLen,
    enableIPv4: config.enableIPv4,
    ...(config.ipv6 === undefined ? {} : { ipv6: { network: config.ipv6.network, subnetLen: config.ipv6.subnetLen } }),
  };
}

/** What the dataplane needs of this node's lease. */
function ownLease(lease: Pick<HeldLease, "subnet" | "subnet6" | "attrs">): OwnLease {
  return {
    subnet: lease.subnet,
    vtepMac: lease.attrs.vtepMac,
    subnet6: lease.subnet6,
    vtepMac6: lease.attrs.v6?.vtepMac,
  };
}

/** The masquerade rules of each family the network has, for this lease. */
function masqueradeInput(config: NetworkConfig, lease: HeldLease): MasqueradeInput {
  return {
    ...(config.enableIPv4 ? { ipv4: { network: config.network, ownSubnet: lease.subnet } } : {}),
    ...(config.ipv6 === undefined || lease.subnet6 === undefined
      ? {}
      : { ipv6: { network: config.ipv6.network, ownSubnet: lease.subnet6 } }),
  };
}
