// DNS benchmark: dnsperf against trellis's DNS server and against dnsmasq (the baseline) serving the same 10,000
// Service names (dnsmasq from a hosts file, authoritative for cluster.local), both on 127.0.0.1, interleaved in one
// run. Two workloads: cluster names (every Service's A record) and ndots:5 external lookups (per name A and AAAA,
// each walking the three search suffixes, then the bare name, which both forward to the same fake upstream on
// loopback and cache). Prints qps (saturated), p50/p99 at a fixed offered load, the ratio ours/dnsmasq, and RSS.
// Ours also runs, for cluster names and RSS, with a 1 MiB young generation and under the agent's V8 flags
// (--lite-mode, decision 0007), to show what each costs.
//   scripts/bench dns     (env: BENCH_DNS_SERVICES=10000 BENCH_DNS_SECONDS=10 BENCH_DNS_RATE=10000)
import { spawn, type ChildProcess } from "node:child_process";
import { createSocket } from "node:dgram";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../../lab/src/ports.js";
import { startDaemon, UPSTREAM_FOR_DAEMON, type Daemon } from "./dns-daemon.js";
import { clusterQueries, externalQueries, hostsFile } from "./dns-workload.js";
import { percentile, ratio, table } from "./stats.js";

const SERVICES = Number(process.env.BENCH_DNS_SERVICES ?? 10_000);
const EXTERNAL_NAMES = 1000;
const SECONDS = Number(process.env.BENCH_DNS_SECONDS ?? 10);
const RATE = Number(process.env.BENCH_DNS_RATE ?? 10_000);
const ROUNDS = 2;
const SMALL_YOUNG_GEN = "trellis --max-semi-space-size=1";
const AGENT_FLAGS = "trellis --lite-mode (agent flags)";
const DAEMON = "trellis-agent dns (the daemon, registry in etcd)";
const VARIANTS: readonly (readonly [string, readonly string[]])[] = [
  [SMALL_YOUNG_GEN, ["--max-semi-space-size=1"]],
  [AGENT_FLAGS, ["--lite-mode", "--max-semi-space-size=1"]],
];

interface Server {
  readonly label: string;
  readonly port: number;
  readonly child: ChildProcess;
  output: string;
}

interface Throughput {
  qps: number;
  lost: number;
  avgMs: number;
  rcodes: string;
}

const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));

/** Spawns a process and waits for a stdout line matching `ready`; returns its first capture group. */
function startProcess(
  label: string,
  file: string,
  args: readonly string[],
  ready: RegExp,
): Promise<{ child: ChildProcess; match: string; output: () => string }> {
  const child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => {
    output += chunk;
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`${label} did not start: ${output}`));
    }, 30_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${label} exited (${code ?? "signal"}): ${output}`));
    });
    child.stdout.on("data", (chunk: string) => {
      output += chunk;
      const m = ready.exec(output);
      if (m !== null) {
        clearTimeout(timer);
        resolve({ child, match: m[1] ?? "", output: () => output });
      }
    });
  });
}

/** Resolves once something on 127.0.0.1:port answers a DNS query (dnsmasq prints nothing useful on stdout). */
async function waitForDns(port: number): Promise<void> {
  const query = Buffer.from("abcd01000001000000000000076578616d706c6503636f6d0000010001", "hex");
  for (let i = 0; i < 100; i++) {
    const answered = await new Promise<boolean>((resolve) => {
      const socket = createSocket("udp4");
      const timer = setTimeout(() => {
        socket.close();
        resolve(false);
      }, 100);
      socket.on("message", () => {
        clearTimeout(timer);
        socket.close();
        resolve(true);
      });
      socket.send(query, port, "127.0.0.1");
    });
    if (answered) return;
  }
  throw new Error(`nothing answers DNS on 127.0.0.1:${port}`);
}

function runDnsperf(port: number, file: string, extra: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      "dnsperf",
      ["-s", "127.0.0.1", "-p", String(port), "-d", file, "-c", "4", "-q", "100", ...extra],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const chunks: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      if (code === 0) resolve(Buffer.concat(chunks).toString());
      else reject(new Error(`dnsperf exited ${code ?? "by signal"}: ${stderr}`));
    });
  });
}

async function throughput(server: Server, file: string): Promise<Throughput> {
  const out = await runDnsperf(server.port, file, ["-l", String(SECONDS)]);
  const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? Number.NaN);
  return {
    qps: num(/Queries per second:\s+([\d.]+)/),
    lost: num(/Queries lost:\s+(\d+)/),
    avgMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
    rcodes: /Response codes:\s+(.*)/.exec(out)?.[1]?.trim() ?? "",
  };
}

/** p50/p99 from dnsperf's per-query lines (-v) at a fixed offered load, the same for every server. */
async function latency(server: Server, file: string): Promise<{ p50: number; p99: number }> {
  const out = await runDnsperf(server.port, file, ["-l", "5", "-Q", String(RATE), "-v"]);
  const samples: number[] = [];
  for (const line of out.split("\n")) {
    if (!line.startsWith("> ")) continue;
    const value = Number(line.slice(line.lastIndexOf(" ") + 1));
    if (Number.isFinite(value)) samples.push(value * 1000);
  }
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
}

async function rssMiB(pid: number | undefined): Promise<{ rss: number; hwm: number }> {
  const text = await readFile(`/proc/${pid ?? 0}/status`, "utf8");
  const kb = (key: string): number => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(text)?.[1] ?? "0") / 1024;
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
    }, 5000);
    child.removeAllListeners("exit");
    child.on("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

const f1 = (n: number): string => n.toFixed(1);
const f2 = (n: number): string => n.toFixed(2);
const mean = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0) / values.length;

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "trellis-bench-dns-"));
  await chmod(dir, 0o755); // dnsmasq drops to "nobody" and must still read its hosts file
  const children: ChildProcess[] = [];
  try {
    const hosts = join(dir, "hosts");
    const clusterFile = join(dir, "cluster.txt");
    const externalFile = join(dir, "external.txt");
    const external = externalQueries(EXTERNAL_NAMES);
    await writeFile(hosts, hostsFile(SERVICES));
    await writeFile(clusterFile, clusterQueries(SERVICES));
    await writeFile(externalFile, external.file);
    await Promise.all([hosts, clusterFile, externalFile].map((f) => chmod(f, 0o644)));

    const upstream = await startProcess(
      "fake upstream",
      process.execPath,
      [here("../../lab/src/fake-dns-upstream.js"), "127.0.0.1", "0", "3600"],
      /listening (\d+)/,
    );
    children.push(upstream.child);
    const upstreamPort = upstream.match;

    const ours = async (label: string, flags: readonly string[], services: number): Promise<Server> => {
      const p = await startProcess(
        label,
        process.execPath,
        [...flags, here("./dns-server.js"), "0", upstreamPort, String(services)],
        /ready (\d+)/,
      );
      children.push(p.child);
      return { label, port: Number(p.match), child: p.child, output: "" };
    };
    const trellis = await ours("trellis", [], SERVICES);
    const variants: Server[] = [];
    for (const [label, flags] of VARIANTS) variants.push(await ours(label, flags, SERVICES));
    const empty = await ours("trellis, no services", [], 0);
    // The real daemon, with its own stand-in upstream where a resolv.conf can name it (port 53).
    const daemonUpstream = await startProcess(
      "fake upstream for the daemon",
      process.execPath,
      [here("../../lab/src/fake-dns-upstream.js"), UPSTREAM_FOR_DAEMON, "53", "3600"],
      /listening (\d+)/,
    );
    children.push(daemonUpstream.child);
    process.stderr.write(`starting ${DAEMON} on ${SERVICES} Services\n`);
    const daemonRun: Daemon = await startDaemon(dir, SERVICES);
    children.push(daemonRun.child);
    const daemon: Server = { label: DAEMON, port: daemonRun.port, child: daemonRun.child, output: "" };

    const dnsmasqPort = await freePort();
    const dnsmasqChild = spawn(
      "dnsmasq",
      [
        "--no-daemon",
        "--no-resolv",
        "--no-hosts",
        `--addn-hosts=${hosts}`,
        `--port=${dnsmasqPort}`,
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        `--server=127.0.0.1#${upstreamPort}`,
        "--local=/cluster.local/",
        "--local-ttl=5",
        "--cache-size=10000",
        "--dns-forward-max=1024",
        "--pid-file=",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    children.push(dnsmasqChild);
    const dnsmasq: Server = { label: "dnsmasq", port: dnsmasqPort, child: dnsmasqChild, output: "" };
    await waitForDns(dnsmasqPort);

    const rssStart = {
      trellis: await rssMiB(trellis.child.pid),
      empty: await rssMiB(empty.child.pid),
      dnsmasq: await rssMiB(dnsmasq.child.pid),
    };
    const variantRssStart = await Promise.all(variants.map((v) => rssMiB(v.child.pid)));
    const daemonRssStart = await rssMiB(daemon.child.pid);
    await stop(empty.child);

    // Warm-up: every external answer cached by both servers, every cluster name asked once.
    process.stderr.write("warm-up\n");
    for (const s of [trellis, ...variants, daemon, dnsmasq]) {
      await runDnsperf(s.port, externalFile, ["-n", "1"]);
      await runDnsperf(s.port, clusterFile, ["-n", "1"]);
    }

    const results = new Map<
      string,
      { qps: number[]; avg: number[]; p50: number[]; p99: number[]; lost: number; rcodes: string }
    >();
    const record = async (workload: string, server: Server, file: string): Promise<void> => {
      process.stderr.write(`${workload}: ${server.label}\n`);
      const t = await throughput(server, file);
      const l = await latency(server, file);
      const key = `${workload}|${server.label}`;
      const r = results.get(key) ?? { qps: [], avg: [], p50: [], p99: [], lost: 0, rcodes: t.rcodes };
      r.qps.push(t.qps);
      r.avg.push(t.avgMs);
      r.p50.push(l.p50);
      r.p99.push(l.p99);
      r.lost += t.lost;
      results.set(key, r);
    };
    for (let round = 0; round < ROUNDS; round++) {
      await record("cluster", trellis, clusterFile);
      await record("cluster", dnsmasq, clusterFile);
      if (round === 0) for (const v of [...variants, daemon]) await record("cluster", v, clusterFile);
      await record("external", trellis, externalFile);
      await record("external", dnsmasq, externalFile);
    }
    const rssEnd = { trellis: await rssMiB(trellis.child.pid), dnsmasq: await rssMiB(dnsmasq.child.pid) };
    const variantRssEnd = await Promise.all(variants.map((v) => rssMiB(v.child.pid)));
    const daemonRssEnd = await rssMiB(daemon.child.pid);
    process.stderr.write("registry change → answered by the daemon\n");
    const changes = await daemonRun.changeLatency(30);
    await daemonRun.stop();

    // Our server's own counters: upstream queries must equal the distinct external questions (cached after one).
    const statsLine = new Promise<string>((resolve) => {
      let out = "";
      trellis.child.stdout?.on("data", (chunk: string) => {
        out += chunk;
        const line = out.split("\n").find((l) => l.startsWith("{"));
        if (line !== undefined) resolve(line);
      });
      setTimeout(() => {
        resolve("{}");
      }, 5000);
    });
    trellis.child.kill("SIGTERM");
    const stats = JSON.parse(await statsLine) as {
      upstream?: { upstreamQueries?: number };
      sources?: Record<string, number>;
    };

    const rows: string[][] = [
      [
        "workload",
        "server",
        "qps (saturated)",
        "ratio",
        "avg ms (saturated)",
        `p50 ms @${RATE} qps`,
        `p99 ms @${RATE} qps`,
        "p99 ratio",
        "lost",
        "response codes",
      ],
    ];
    for (const workload of ["cluster", "external"]) {
      const base = results.get(`${workload}|dnsmasq`);
      for (const label of ["trellis", ...VARIANTS.map(([l]) => l), DAEMON, "dnsmasq"]) {
        const r = results.get(`${workload}|${label}`);
        if (r === undefined || base === undefined) continue;
        rows.push([
          workload,
          label,
          f1(mean(r.qps)),
          ratio(mean(r.qps), mean(base.qps)),
          f2(mean(r.avg)),
          f2(mean(r.p50)),
          f2(mean(r.p99)),
          ratio(mean(r.p99), mean(base.p99)),
          String(r.lost),
          r.rcodes,
        ]);
      }
    }
    const ext = results.get("external|trellis");
    const extBase = results.get("external|dnsmasq");
    const clusterQps = mean(results.get("cluster|trellis")?.qps ?? [Number.NaN]);
    const clusterBase = mean(results.get("cluster|dnsmasq")?.qps ?? [Number.NaN]);
    process.stdout.write(
      `DNS: dnsperf (-c 4 -q 100, ${SECONDS} s per run, ${ROUNDS} rounds interleaved, mean shown) against trellis's server and dnsmasq (the baseline), both on 127.0.0.1\n`,
    );
    process.stdout.write(
      `${SERVICES} Services (A records from dnsmasq's hosts file); external: ${EXTERNAL_NAMES} names × A+AAAA × (3 search suffixes + bare) = ${external.perLookup} queries per lookup, bare names answered by a fake upstream on loopback and cached by both\n\n`,
    );
    process.stdout.write(`${table(rows)}\n\n`);
    process.stdout.write(
      `${table([
        ["figure", "value", "ratio"],
        [
          "external lookups per second (qps / queries per lookup), trellis",
          f1(mean(ext?.qps ?? [Number.NaN]) / external.perLookup),
          ratio(mean(ext?.qps ?? [Number.NaN]), mean(extBase?.qps ?? [Number.NaN])) + " dnsmasq",
        ],
        [
          "trellis external qps vs its cluster qps",
          f1(mean(ext?.qps ?? [Number.NaN])),
          ratio(mean(ext?.qps ?? [Number.NaN]), clusterQps) + " cluster",
        ],
        [
          "trellis upstream queries in the whole run (distinct external questions: " + String(2 * EXTERNAL_NAMES) + ")",
          String(stats.upstream?.upstreamQueries ?? "?"),
          "",
        ],
        [
          `RSS trellis, ${SERVICES} Services (start / end / peak)`,
          `${f1(rssStart.trellis.rss)} / ${f1(rssEnd.trellis.rss)} / ${f1(rssEnd.trellis.hwm)} MiB`,
          ratio(rssEnd.trellis.rss, rssEnd.dnsmasq.rss) + " dnsmasq",
        ],
        [
          "RSS trellis, no Services",
          `${f1(rssStart.empty.rss)} MiB`,
          ratio(rssStart.trellis.rss, rssStart.empty.rss) + " → with Services",
        ],
        ...variants.map((v, i) => [
          `RSS ${v.label}, ${SERVICES} Services (start / end)`,
          `${f1(variantRssStart[i]?.rss ?? 0)} / ${f1(variantRssEnd[i]?.rss ?? 0)} MiB`,
          ratio(variantRssEnd[i]?.rss ?? 0, rssEnd.dnsmasq.rss) + " dnsmasq",
        ]),
        [
          `RSS ${DAEMON}, ${SERVICES} Services (start / end)`,
          `${f1(daemonRssStart.rss)} / ${f1(daemonRssEnd.rss)} MiB`,
          ratio(daemonRssEnd.rss, rssEnd.dnsmasq.rss) + " dnsmasq",
        ],
        [
          `Service created in etcd → answered by the daemon, p50 / p99 (${changes.change.length} samples)`,
          `${f2(percentile(changes.change, 50))} / ${f2(percentile(changes.change, 99))} ms`,
          ratio(percentile(changes.change, 50), percentile(changes.watch, 50)) +
            ` etcd put → watch event (${f2(percentile(changes.watch, 50))} ms)`,
        ],
        [
          `RSS dnsmasq, ${SERVICES} hosts (start / end)`,
          `${f1(rssStart.dnsmasq.rss)} / ${f1(rssEnd.dnsmasq.rss)} MiB`,
          "1.00×",
        ],
      ])}\n`,
    );
    const goal = (value: number, base: number): string => (value / base >= 0.5 ? "met" : "NOT met");
    process.stdout.write(
      `\ngoal ≥ 0.5× dnsmasq qps: cluster ${goal(clusterQps, clusterBase)}, external ${goal(mean(ext?.qps ?? [0]), mean(extBase?.qps ?? [1]))}\n`,
    );
  } finally {
    await Promise.all(children.map(stop));
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
