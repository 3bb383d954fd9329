// A real etcd server for tests, the lab and benchmarks: temp data dir, its own ports, stopped by its own PID.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DetachedProcess, runStatus, start, startDetached, type RunningProcess } from "./exec.js";
import { freePort, waitFor } from "./ports.js";

export interface EtcdTls {
  caFile: string;
  certFile: string;
  keyFile: string;
  /** Require client certificates signed by caFile. */
  clientCertAuth: boolean;
}

export interface EtcdMemberSpec {
  name: string;
  host: string;
  clientPort: number;
  peerPort: number;
  /** Run inside this network namespace (`ip netns exec`). */
  netns?: string;
}

export interface EtcdServerOptions {
  host?: string;
  netns?: string;
  tls?: EtcdTls;
  /** Where to keep the data; a fresh temp dir by default (removed on stop). */
  dataDir?: string;
  /** For a multi-member cluster: every member, this one included. */
  cluster?: { self: EtcdMemberSpec; members: readonly EtcdMemberSpec[] };
  /** Fixed ports instead of free ones picked on loopback (inside a namespace every port is free). */
  clientPort?: number;
  peerPort?: number;
  /** Run detached (it outlives this process), appending its output here — the lab's mode. */
  logFile?: string;
}

/** etcd's command line for one member: its own client and peer URLs, data dir, and the cluster it belongs to. */
export function etcdArgs(
  member: EtcdMemberSpec,
  dataDir: string,
  members: readonly EtcdMemberSpec[],
  tls?: EtcdTls,
): string[] {
  const scheme = tls === undefined ? "http" : "https";
  const clientUrl = `${scheme}://${member.host}:${member.clientPort}`;
  const peerUrl = `http://${member.host}:${member.peerPort}`;
  const args = [
    "--name",
    member.name,
    "--data-dir",
    dataDir,
    // Also on loopback (inside a namespace that is the namespace's own loopback) for local tools.
    "--listen-client-urls",
    member.host === "127.0.0.1" ? clientUrl : `${clientUrl},${scheme}://127.0.0.1:${member.clientPort}`,
    "--advertise-client-urls",
    clientUrl,
    "--listen-peer-urls",
    peerUrl,
    "--initial-advertise-peer-urls",
    peerUrl,
    "--initial-cluster",
    members.map((m) => `${m.name}=http://${m.host}:${m.peerPort}`).join(","),
    "--initial-cluster-state",
    "new",
    "--initial-cluster-token",
    "trellis",
    "--logger",
    "zap",
    "--log-level",
    "error",
    // Small and fast: tests and the lab never need big snapshots.
    "--snapshot-count",
    "10000",
    "--quota-backend-bytes",
    String(256 * 1024 * 1024),
  ];
  if (tls !== undefined) {
    args.push("--cert-file", tls.certFile, "--key-file", tls.keyFile);
    if (tls.clientCertAuth) args.push("--client-cert-auth", "--trusted-ca-file", tls.caFile);
  }
  return args;
}

export function wrap(netns: string | undefined, file: string, args: string[]): [string, string[]] {
  return netns === undefined ? [file, args] : ["ip", ["netns", "exec", netns, file, ...args]];
}

export class EtcdServer {
  private process: RunningProcess | undefined;
  private ownsDataDir = false;

  private constructor(
    readonly member: EtcdMemberSpec,
    private readonly options: EtcdServerOptions,
    readonly dataDir: string,
  ) {}

  static async start(options: EtcdServerOptions = {}): Promise<EtcdServer> {
    const host = options.host ?? "127.0.0.1";
    const member = options.cluster?.self ?? {
      name: "default",
      host,
      clientPort: options.clientPort ?? (await freePort(options.netns === undefined ? host : "127.0.0.1")),
      peerPort: options.peerPort ?? (await freePort(options.netns === undefined ? host : "127.0.0.1")),
      ...(options.netns === undefined ? {} : { netns: options.netns }),
    };
    const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "trellis-etcd-")));
    const server = new EtcdServer(member, options, dataDir);
    server.ownsDataDir = options.dataDir === undefined;
    try {
      await server.launch();
    } catch (error) {
      await server.stop();
      throw error;
    }
    return server;
  }

  get scheme(): string {
    return this.options.tls === undefined ? "http" : "https";
  }

  get endpoint(): string {
    return `${this.scheme}://${this.member.host}:${this.member.clientPort}`;
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  get running(): boolean {
    return this.process?.running ?? false;
  }

  private args(): string[] {
    return etcdArgs(this.member, this.dataDir, this.options.cluster?.members ?? [this.member], this.options.tls);
  }

  private async launch(): Promise<void> {
    const [file, args] = wrap(this.member.netns, "etcd", this.args());
    const logFile = this.options.logFile;
    this.process =
      logFile === undefined
        ? start(`etcd ${this.member.name}`, file, args)
        : new DetachedProcess(startDetached(file, args, logFile), logFile, /\betcd\b/);
    const proc = this.process;
    if (this.options.cluster !== undefined) return; // members wait for each other: see waitHealthy()
    await this.waitHealthy(proc);
  }

  async waitHealthy(proc = this.process, timeoutMs = 20_000): Promise<void> {
    await waitFor(
      `etcd at ${this.endpoint} to be healthy`,
      async () => {
        if (proc !== undefined && !proc.running) {
          throw new Error(`etcd exited: ${proc.recentOutput.slice(-2000)}`);
        }
        const result = await runStatus(
          ...wrap(this.member.netns, "etcdctl", ["endpoint", "health", ...this.etcdctlArgs()]),
          {
            timeoutMs: 3000,
            env: { ...process.env, ETCDCTL_API: "3" },
          },
        );
        return result.code === 0;
      },
      timeoutMs,
      100,
    );
  }

  /** Arguments that point etcdctl at this server (TLS included). */
  etcdctlArgs(): string[] {
    const args = ["--endpoints", this.endpoint, "--command-timeout", "2s", "--dial-timeout", "2s"];
    const tls = this.options.tls;
    if (tls !== undefined) args.push("--cacert", tls.caFile, "--cert", tls.certFile, "--key", tls.keyFile);
    return args;
  }

  /** Runs etcdctl against this server and returns stdout. */
  async etcdctl(...args: string[]): Promise<string> {
    const result = await runStatus(...wrap(this.member.netns, "etcdctl", [...this.etcdctlArgs(), ...args]), {
      env: { ...process.env, ETCDCTL_API: "3" },
    });
    if (result.code !== 0) throw new Error(`etcdctl ${args.join(" ")}: ${result.stderr.trim()}`);
    return result.stdout;
  }

  /** Stops the server but keeps its data dir, so that restart() brings back the same cluster. */
  async pause(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    await this.process?.stop(5000, signal);
  }

  async restart(): Promise<void> {
    await this.pause();
    await this.launch();
    if (this.options.cluster !== undefined) await this.waitHealthy();
  }

  /** Resumes after pause() on the same ports and data. */
  async resume(): Promise<void> {
    await this.launch();
    if (this.options.cluster !== undefined) await this.waitHealthy();
  }

  async stop(): Promise<void> {
    await this.process?.stop();
    if (this.ownsDataDir) await rm(this.dataDir, { recursive: true, force: true });
  }
}
