// The lab: an underlay namespace (bridge, etcd, a router to an "outside" address) and one namespace per node
// running a real trellis-agent, started as it would be on a node. Used by `scripts/lab`, the end-to-end tests and
// the benchmarks. Everything it creates carries the layout's prefix; down() removes all of it, also after a crash.
import { execFileSync } from "node:child_process";
import { mkdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { REPO_ROOT } from "./paths.js";
import { EtcdServer } from "./etcd.js";
import { commandLine, run, runStatus, startDetached, stopPid } from "./exec.js";
import {
  LabLayout,
  OUTSIDE_IP,
  UNDERLAY_BRIDGE_MAC,
  UNDERLAY_GATEWAY,
  UNDERLAY_GATEWAY6,
  UNDERLAY_PREFIX_LEN6,
  POD_NETWORK,
  POD_NETWORK6,
  UNDERLAY_PREFIX_LEN,
  type NodeLayout,
} from "./layout.js";
import { addNamespace, deleteNamespace, ipIn, listNamespaces, removeNetnsEtcDirSync } from "./netns.js";
import { waitFor } from "./ports.js";
import {
  DNS_CMD,
  UPSTREAM_CMD,
  UPSTREAM_IP,
  startDns,
  startUpstream,
  upstreamResolvConf,
  waitDnsReady,
} from "./lab-dns.js";
import { addPods } from "./lab-pods.js";
import { readAgentEnv, renderNodeConfig, type NodeSettings } from "./node-config.js";
import type { Endpoint } from "./ping.js";
import { readState, writeState, type IpFamilies, type LabState } from "./state.js";

export type Backend = "vxlan" | "host-gw";

export interface UpOptions {
  readonly nodes: number;
  /** 1 (default) or 3: a 3-member etcd cluster. */
  readonly etcdMembers?: number;
  readonly backend: Backend;
  readonly directRouting?: boolean;
  /** The pod networks: IPv4 (default), dual-stack (--ipv6) or IPv6 only (--ipv6-only). */
  readonly ipFamily?: IpFamilies;
  /** Lease TTL for the agents (default: the agent's 24h). */
  readonly leaseTtl?: string;
  /** Extra TRELLIS_* settings for every agent (tests shorten intervals this way). */
  readonly agentEnv?: Readonly<Record<string, string>>;
  /** Pods created on every node through the CNI plugin once its agent is ready (default 0). */
  readonly podsPerNode?: number;
  /** A cluster DNS server on every node (default true). */
  readonly dns?: boolean;
}

const AGENT_CMD = /agent\/bin\/agent run/;
const ETCD_CMD = /\betcd\b.*--data-dir/;

export class Lab {
  private state: LabState | undefined;
  private extraEnv: Readonly<Record<string, string>> = {};

  constructor(
    readonly layout: LabLayout,
    private readonly progress: (line: string) => void = () => undefined,
  ) {}

  /** Loads the state of a lab created earlier (by another process). */
  async load(): Promise<LabState | undefined> {
    this.state = await readState(this.layout.stateFile);
    return this.state;
  }

  get current(): LabState {
    if (this.state === undefined) throw new Error(`no lab is up (no ${this.layout.stateFile}); run \`scripts/lab up\``);
    return this.state;
  }

  async save(): Promise<void> {
    await writeState(this.layout.stateFile, this.current);
  }

  async up(options: UpOptions): Promise<void> {
    await this.down();
    this.extraEnv = options.agentEnv ?? {};
    await mkdir(this.layout.stateDir, { recursive: true });
    this.state = {
      prefix: this.layout.prefix,
      backend: options.backend,
      directRouting: options.directRouting ?? false,
      ipFamily: options.ipFamily ?? "ipv4",
      etcd: [],
      etcdEndpoints: Array.from({ length: options.etcdMembers ?? 1 }, (_, m) => this.layout.etcdEndpoint(m)),
      nodes: [],
      pods: [],
      createdAt: new Date().toISOString(),
    };
    await this.save();
    this.progress(
      `install: scripts/install --root ${this.layout.installRoot} (the agent, the CNI plugin and its conflist, as on a node)`,
    );
    await mkdir(this.layout.installRoot, { recursive: true });
    await run(join(REPO_ROOT, "scripts/install"), ["--root", this.layout.installRoot], { timeoutMs: 60_000 });
    this.progress(
      `underlay: namespace ${this.layout.underlayNs}, bridge br0, ${UNDERLAY_GATEWAY}/${UNDERLAY_PREFIX_LEN}${this.hasIpv6 ? ` and ${UNDERLAY_GATEWAY6}/${UNDERLAY_PREFIX_LEN6}` : ""}`,
    );
    await this.createUnderlay();
    this.progress(
      `etcd: starting ${this.current.etcdEndpoints.length} member(s) in ${this.layout.underlayNs} at ${this.current.etcdEndpoints.join(", ")}`,
    );
    await this.startEtcd();
    await startUpstream(this);
    const family = options.ipFamily ?? "ipv4";
    const networks =
      family === "ipv4" ? POD_NETWORK : family === "dual" ? `${POD_NETWORK} and ${POD_NETWORK6}` : POD_NETWORK6;
    this.progress(
      `network config: ${networks}, backend ${options.backend}${options.directRouting === true ? " with DirectRouting" : ""}`,
    );
    await this.writeNetworkConfig(options);
    for (let index = 1; index <= options.nodes; index++) {
      await this.addNode(index, options.leaseTtl);
    }
    await Promise.all(this.current.nodes.map((n) => this.waitReady(n.index)));
    if (options.dns !== false) {
      this.progress(
        `cluster DNS: a server per node (trellis-agent dns on 169.254.20.10 and the node's address), upstream ${UPSTREAM_IP} (the lab's stand-in)`,
      );
      for (const { index } of this.current.nodes) await startDns(this, index);
      await Promise.all(this.current.nodes.map((n) => waitDnsReady(this, n.index)));
    }
    const pods = options.podsPerNode ?? 0;
    if (pods > 0) {
      this.progress(`pods: ${pods} per node, each ADDed through the node's CNI chain (trellis, then portmap)`);
      for (const { index } of this.current.nodes) await addPods(this, index, pods);
    }
  }

  private async createUnderlay(): Promise<void> {
    const ns = this.layout.underlayNs;
    await addNamespace(ns);
    await ipIn(ns, "link", "add", "br0", "address", UNDERLAY_BRIDGE_MAC, "type", "bridge");
    await ipIn(ns, "addr", "add", `${UNDERLAY_GATEWAY}/${UNDERLAY_PREFIX_LEN}`, "dev", "br0");
    if (this.hasIpv6)
      await ipIn(ns, "addr", "add", `${UNDERLAY_GATEWAY6}/${UNDERLAY_PREFIX_LEN6}`, "dev", "br0", "nodad");
    await ipIn(ns, "link", "set", "br0", "up");
    // The "outside": an address beyond the pod network that pods reach only when masqueraded.
    await ipIn(ns, "addr", "add", `${OUTSIDE_IP}/32`, "dev", "lo");
    await run("ip", ["netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  }

  private etcdServer(member: number): Promise<EtcdServer> {
    const members = this.current.etcdEndpoints.map((_, m) => this.layout.etcdMember(m));
    const self = this.layout.etcdMember(member);
    return EtcdServer.start({
      cluster: { self, members },
      dataDir: join(this.layout.stateDir, self.name),
      logFile: join(this.layout.stateDir, `${self.name}.log`),
    });
  }

  private async startEtcd(): Promise<void> {
    const servers = await Promise.all(this.current.etcdEndpoints.map((_, m) => this.etcdServer(m)));
    this.current.etcd.push(...servers.map((server, m) => ({ name: this.layout.etcdMember(m).name, pid: server.pid })));
    await this.save();
    await Promise.all(servers.map((server) => server.waitHealthy()));
  }

  /** Stops etcd member m (all members by default), keeping its data: the outage tests start it again. */
  async stopEtcd(member?: number, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    for (const [m, entry] of this.current.etcd.entries()) {
      if (member !== undefined && m !== member) continue;
      if (entry.pid !== undefined) await stopPid(entry.pid, ETCD_CMD, 5000, signal);
      entry.pid = undefined;
    }
    await this.save();
  }

  /** Starts stopped etcd members again on their data (member m, or every stopped one). */
  async startEtcdAgain(member?: number): Promise<void> {
    const starting: Promise<EtcdServer>[] = [];
    for (const [m, entry] of this.current.etcd.entries()) {
      if ((member !== undefined && m !== member) || entry.pid !== undefined) continue;
      starting.push(
        this.etcdServer(m).then((server) => {
          entry.pid = server.pid;
          return server;
        }),
      );
    }
    const servers = await Promise.all(starting);
    await this.save();
    await Promise.all(servers.map((server) => server.waitHealthy()));
  }

  /** Runs trellis-agent with the given arguments inside a namespace (the underlay's by default). */
  agentCli(
    args: readonly string[],
    ns = this.layout.underlayNs,
    env: Record<string, string> = {},
  ): ReturnType<typeof runStatus> {
    return runStatus("ip", ["netns", "exec", ns, this.layout.agentBin, ...args], {
      env: { ...process.env, TRELLIS_ETCD_ENDPOINTS: this.current.etcdEndpoints.join(","), ...env },
      timeoutMs: 30_000,
    });
  }

  private async writeNetworkConfig(options: UpOptions): Promise<void> {
    const args = ["network", "set", "--network", POD_NETWORK, "--backend", options.backend];
    if (options.directRouting === true) args.push("--direct-routing");
    if (options.ipFamily === "dual") args.push("--ipv6-network", POD_NETWORK6);
    if (options.ipFamily === "ipv6") args.push("--ipv6-network", POD_NETWORK6, "--ipv6-only");
    const result = await this.agentCli(args);
    if (result.code !== 0) throw new Error(`network set failed: ${result.stderr}`);
  }

  /** The settings a node's config is rendered from (deploy/render-node-config, as on a real node). */
  private nodeSettings(node: NodeLayout, leaseTtl?: string): NodeSettings {
    return {
      etcdEndpoints: this.current.etcdEndpoints,
      iface: "eth0",
      subnetFile: join(node.dir, "subnet.env"),
      cniDataDir: join(node.dir, "cni-ipam"),
      cniSocket: join(node.dir, "cni.sock"),
      podRecordDir: join(node.dir, "pods"),
      agentBin: this.layout.agentBin,
      resolvConf: upstreamResolvConf(this),
      extra: {
        TRELLIS_LOG_FORMAT: "text",
        ...(leaseTtl === undefined ? {} : { TRELLIS_SUBNET_LEASE_TTL: leaseTtl }),
        ...this.extraEnv,
      },
    };
  }

  /** The variables a CLI command on a node needs (etcd, subnet file, CNI socket): what its agent.env says. */
  agentEnv(node: NodeLayout): Record<string, string> {
    return {
      TRELLIS_ETCD_ENDPOINTS: this.current.etcdEndpoints.join(","),
      TRELLIS_SUBNET_FILE: join(node.dir, "subnet.env"),
      TRELLIS_CNI_SOCKET: join(node.dir, "cni.sock"),
      TRELLIS_LOG_FORMAT: "text",
    };
  }

  /** Creates node namespace `index` (the next free one by default), wires it to the underlay and starts its agent. */
  async addNode(index = this.nextIndex(), leaseTtl?: string, startAgent = true): Promise<NodeLayout> {
    const node = this.layout.node(index);
    if (this.current.nodes.some((n) => n.index === index)) throw new Error(`node ${node.name} already exists`);
    this.progress(`node ${node.name}: namespace ${node.ns}, eth0 ${node.ip}`);
    this.current.nodes.push({ index });
    await this.save();
    await mkdir(node.dir, { recursive: true });
    await renderNodeConfig(node, this.nodeSettings(node, leaseTtl));
    await addNamespace(node.ns);
    const peer = `${this.layout.prefix}t${index}`;
    await run("ip", ["link", "add", node.uplink, "type", "veth", "peer", "name", peer]);
    await run("ip", ["link", "set", node.uplink, "netns", this.layout.underlayNs]);
    await run("ip", ["link", "set", peer, "netns", node.ns, "name", "eth0"]);
    await ipIn(this.layout.underlayNs, "link", "set", node.uplink, "master", "br0", "up");
    await ipIn(node.ns, "addr", "add", `${node.ip}/${UNDERLAY_PREFIX_LEN}`, "dev", "eth0");
    if (this.hasIpv6) {
      // A real node's NIC has been up for long; the lab's is seconds old. Until its link-local address passes
      // duplicate address detection, the kernel resolves no neighbour for a forwarded packet on it, so a pod's first
      // IPv6 packet to another node over host-gw waited 1-2 s. The global address is NODAD for the same reason.
      await run("ip", ["netns", "exec", node.ns, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=0"]);
      await ipIn(node.ns, "addr", "add", `${node.ip6}/${UNDERLAY_PREFIX_LEN6}`, "dev", "eth0", "nodad");
    }
    await ipIn(node.ns, "link", "set", "eth0", "up");
    await ipIn(node.ns, "route", "add", "default", "via", UNDERLAY_GATEWAY);
    if (startAgent) await this.startAgent(index);
    return node;
  }

  private nextIndex(): number {
    const used = new Set(this.current.nodes.map((n) => n.index));
    let index = 1;
    while (used.has(index)) index += 1;
    return index;
  }

  /** Starts the node's agent as its unit would: the executable, `run`, the rendered agent.env as environment. */
  async startAgent(index: number): Promise<number> {
    const node = this.layout.node(index);
    const entry = this.current.nodes.find((n) => n.index === index);
    if (entry === undefined) throw new Error(`no node ${node.name}`);
    const log = join(node.dir, "agent.log");
    entry.logOffset = await stat(log).then(
      (s) => s.size,
      () => 0,
    );
    const pid = startDetached("ip", ["netns", "exec", node.ns, this.layout.agentBin, "run"], log, {
      ...process.env,
      ...(await readAgentEnv(node)),
    });
    entry.agentPid = pid;
    await this.save();
    return pid;
  }

  /** Stops a node's agent by its PID (SIGKILL for a crash, SIGTERM for a clean stop). */
  async killAgent(index: number, signal: NodeJS.Signals = "SIGKILL"): Promise<boolean> {
    const entry = this.current.nodes.find((n) => n.index === index);
    if (entry?.agentPid === undefined) return false;
    const stopped = await stopPid(entry.agentPid, AGENT_CMD, 5000, signal);
    entry.agentPid = undefined;
    await this.save();
    return stopped;
  }

  /** Waits until the node's current agent reports ready in its log. */
  async waitReady(index: number, timeoutMs = 30_000): Promise<void> {
    const node = this.layout.node(index);
    const entry = this.current.nodes.find((n) => n.index === index);
    const logFile = join(node.dir, "agent.log");
    await waitFor(
      `agent on ${node.name} to be ready`,
      async () => {
        if (entry?.agentPid !== undefined && !AGENT_CMD.test(commandLine(entry.agentPid))) {
          throw new Error(
            `the agent on ${node.name} exited; see ${logFile}:\n${(await readFile(logFile, "utf8")).slice(-2000)}`,
          );
        }
        const text = (await readFile(logFile)).subarray(entry?.logOffset ?? 0).toString("utf8");
        return /\bINFO\s+ready\b|"message":"ready"/.test(text);
      },
      timeoutMs,
      50,
    );
  }

  /** Whether the lab's pod network has IPv6 (dual-stack or IPv6 only). */
  get hasIpv6(): boolean {
    const family = this.current.ipFamily ?? "ipv4";
    return family !== "ipv4";
  }

  /** Whether it has IPv4 (all but an IPv6-only lab). */
  get hasIpv4(): boolean {
    return (this.current.ipFamily ?? "ipv4") !== "ipv6";
  }

  /** The node's lease as written to its subnet file: the gateway address and prefix (FLANNEL_SUBNET, or
   * FLANNEL_IPV6_SUBNET for family 6). */
  async nodeGateway(index: number, family: 4 | 6 = 4): Promise<{ ip: string; prefixLen: number }> {
    const text = await readFile(join(this.layout.node(index).dir, "subnet.env"), "utf8");
    const key = family === 4 ? "FLANNEL_SUBNET" : "FLANNEL_IPV6_SUBNET";
    const match = new RegExp(`^${key}=([\\da-f.:]+)/(\\d+)$`, "m").exec(text);
    if (match === null) throw new Error(`no ${key} in ${this.layout.node(index).name}'s subnet file`);
    return { ip: match[1] ?? "", prefixLen: Number(match[2]) };
  }

  /**
   * Puts each node's gateway address on a bridge cni0 (as the CNI plugin does for its first pod), so node subnets
   * can be pinged before any pod exists.
   */
  async ensureGateways(family: 4 | 6 = this.hasIpv4 ? 4 : 6): Promise<Endpoint[]> {
    const endpoints: Endpoint[] = [];
    for (const { index } of this.current.nodes) {
      const node = this.layout.node(index);
      const gateway = await this.nodeGateway(index, family);
      const link = await runStatus("ip", ["-n", node.ns, "link", "show", "cni0"]);
      if (link.code !== 0) await ipIn(node.ns, "link", "add", "cni0", "type", "bridge");
      const address = `${gateway.ip}/${gateway.prefixLen}`;
      await runStatus("ip", [
        "-n",
        node.ns,
        "addr",
        "replace",
        address,
        "dev",
        "cni0",
        ...(family === 6 ? ["nodad"] : []),
      ]);
      await ipIn(node.ns, "link", "set", "cni0", "up");
      endpoints.push({ name: family === 6 ? `${node.name}/6` : node.name, ns: node.ns, ip: gateway.ip });
    }
    return endpoints;
  }

  /** Runs etcdctl against the lab's etcd, from the underlay namespace. */
  async etcdctl(...args: string[]): Promise<string> {
    const result = await runStatus(
      "ip",
      [
        "netns",
        "exec",
        this.layout.underlayNs,
        "etcdctl",
        "--endpoints",
        this.current.etcdEndpoints.join(","),
        ...args,
      ],
      {
        env: { ...process.env, ETCDCTL_API: "3" },
      },
    );
    if (result.code !== 0) throw new Error(`etcdctl ${args.join(" ")}: ${result.stderr.trim()}`);
    return result.stdout;
  }

  /** The agent log of a node. */
  async agentLog(index: number): Promise<string> {
    return readFile(join(this.layout.node(index).dir, "agent.log"), "utf8");
  }

  /** `trellis-agent status` as seen from a node (its own lease marked). */
  async status(index = this.current.nodes[0]?.index ?? 1, json = false): Promise<string> {
    const node = this.layout.node(index);
    const result = await this.agentCli(["status", ...(json ? ["-o", "json"] : [])], node.ns, this.agentEnv(node));
    if (result.code !== 0) throw new Error(`status failed: ${result.stderr.trim()}`);
    return result.stdout;
  }

  /** Removes everything of this lab: processes by PID, then every namespace with the prefix, then the state dir. */
  async down(): Promise<void> {
    const state = this.state ?? (await readState(this.layout.stateFile));
    // The DNS servers together: each answers on for its lameduck time after withdrawing (agent/src/dns).
    await Promise.all(
      (state?.nodes ?? []).map(async (node) => {
        if (node.dnsPid !== undefined) await stopPid(node.dnsPid, DNS_CMD, 4000);
      }),
    );
    for (const node of state?.nodes ?? [])
      if (node.agentPid !== undefined) await stopPid(node.agentPid, AGENT_CMD, 3000);
    if (state?.upstreamPid !== undefined) await stopPid(state.upstreamPid, UPSTREAM_CMD, 2000);
    for (const member of state?.etcd ?? []) if (member.pid !== undefined) await stopPid(member.pid, ETCD_CMD, 5000);
    const namespaces = (await listNamespaces()).filter((ns) => this.layout.owns(ns));
    // Nodes first, the underlay last: deleting a namespace kills whatever still runs in it.
    for (const ns of namespaces.sort(
      (a, b) => Number(a === this.layout.underlayNs) - Number(b === this.layout.underlayNs),
    )) {
      await deleteNamespace(ns);
    }
    await rm(this.layout.stateDir, { recursive: true, force: true });
    this.state = undefined;
  }

  /** Synchronous last-resort cleanup for process exit (tests): kill recorded PIDs, delete namespaces by prefix. */
  downSync(): void {
    const state = this.state;
    const pids = [
      ...(state?.nodes.flatMap((n) => [n.agentPid, n.dnsPid]) ?? []),
      ...(state?.etcd.map((m) => m.pid) ?? []),
      state?.upstreamPid,
    ];
    for (const pid of pids) {
      if (pid === undefined || !/agent|etcd|fake-dns-upstream/.test(commandLine(pid))) continue;
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    try {
      const list = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
      for (const ns of list
        .split("\n")
        .map((l) => l.split(" ")[0] ?? "")
        .filter((n) => n !== "" && this.layout.owns(n))) {
        execFileSync("ip", ["netns", "del", ns], { stdio: "ignore" });
        removeNetnsEtcDirSync(ns);
      }
    } catch {
      // best effort
    }
  }
}
