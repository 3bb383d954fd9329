// Services benchmark, each figure against a baseline measured in the same run:
//  - registry change → element in the service map of every agent (10 agents), p50/p99, vs etcd's watch latency
//  - 10,000 Services × 3 endpoints: agent start → first complete sync, vs `nft -f` loading the same table alone;
//    one change at that scale vs the same change with an empty registry; agent RSS vs the agent without Services
//  - connect latency through a cluster IP (10,000 Services programmed) vs straight to the pod, and vs kube-proxy's
//    iptables-mode layout for the same Services built by hand (kube-proxy-iptables.ts, the anchor)
//  - TCP throughput through a cluster IP vs straight to the pod (iperf3)
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { formatIpv4, parseIpv4 } from "#lib/ipv4.js";
import type { Lab } from "../../lab/src/lab.js";
import { run } from "../../lab/src/exec.js";
import { POD_HTTP_PORT, startPodServer } from "../../lab/src/lab-pods.js";
import { REPO_ROOT } from "../../lab/src/paths.js";
import { podPair, rssMiB, runProbe, withLab } from "./bench-lab.js";
import { IPERF_PORT, iperf, median } from "./iperf.js";
import { kubeProxyIptables } from "./kube-proxy-iptables.js";
import { syntheticServices } from "./service-set.js";
import { ms, percentile, ratio, table } from "./stats.js";

const AGENTS = Number(process.env.BENCH_NODES ?? 10);
const CHANGES = Number(process.env.BENCH_CHANGES ?? 100);
const SERVICES = Number(process.env.BENCH_SERVICES ?? 10_000);
const PER_SERVICE = 3;
const CONNECTS = Number(process.env.BENCH_CONNECTS ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const POD_NETWORK = "172.30.0.0/16";
const FIRST_IP = parseIpv4("10.254.16.1") ?? 0;
const DNS_IP = parseIpv4("10.254.0.10") ?? 0;
const TARGET_IP = parseIpv4("10.254.8.8") ?? 0;
const TARGET_PORT = 8000;

const progress = (line: string): void => {
  process.stderr.write(`  ${line}\n`);
};
const sleep = (msec: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, msec));

function probe<T>(lab: Lab, args: Record<string, unknown>): Promise<T> {
  return runProbe<T>(lab, "services-probe", args);
}

function agentPid(lab: Lab, index: number): number {
  const pid = lab.current.nodes.find((n) => n.index === index)?.agentPid;
  if (pid === undefined) throw new Error(`no agent on node ${index}`);
  return pid;
}

/** Connect times to each target, alternating connection by connection in one probe. */
async function connects(ns: string, count: number, ...targets: string[]): Promise<number[][]> {
  const script = join(REPO_ROOT, "dist/scripts/benchmarks/connect-probe.js");
  const { stdout } = await run("ip", ["netns", "exec", ns, process.execPath, script, String(count), ...targets], {
    timeoutMs: count * targets.length * 100 + 10_000,
  });
  return JSON.parse(stdout) as number[][];
}

/** Connect times through `via` and straight to the pod, paired: each connection through one, then one straight. */
async function connectPair(
  ns: string,
  via: string,
  pod: string,
  label: string,
): Promise<{ via: number[]; direct: number[] }> {
  const out = { via: [] as number[], direct: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    progress(`connect latency, ${label}: round ${round + 1}/${ROUNDS}`);
    const [through = [], straight = []] = await connects(
      ns,
      Math.ceil(CONNECTS / ROUNDS),
      `${via}:${TARGET_PORT}`,
      `${pod}:${POD_HTTP_PORT}`,
    );
    out.via.push(...through);
    out.direct.push(...straight);
  }
  return out;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Waits for the agent's full-sync log line after `offset`: its services count and own duration. */
async function fullSync(lab: Lab, index: number, offset: number, services: number): Promise<{ durationMs: number }> {
  const file = join(lab.layout.node(index).dir, "agent.log");
  for (let i = 0; i < 6000; i++) {
    const text = (await readFile(file)).subarray(offset).toString("utf8");
    for (const m of text.matchAll(
      /service rules programmed \(full sync\) services=(\d+) changed=\d+ durationMs=([\d.]+)/g,
    )) {
      if (Number(m[1]) >= services) return { durationMs: Number(m[2]) };
    }
    await sleep(10);
  }
  throw new Error(`no full sync of ${services} services on node ${index} within 60 s`);
}

async function convergence(): Promise<{ watch: number[]; latency: number[] }> {
  return withLab(
    "bsc",
    { nodes: AGENTS, backend: "vxlan" },
    async (lab) => {
      const nodeNamespaces = lab.current.nodes.map((n) => lab.layout.node(n.index).ns);
      progress(
        `creating ${CHANGES} Services one by one, each timed until it is in the service map of all ${AGENTS} agents`,
      );
      const { watchLatency, latency } = await probe<{ watchLatency: number[]; latency: number[] }>(lab, {
        mode: "changes",
        nodeNamespaces,
        count: CHANGES,
        baseline: 50,
        namePrefix: "conv",
      });
      return { watch: watchLatency, latency };
    },
    progress,
  );
}

interface ScaleFigures {
  rssEmpty: number;
  rssLoaded: number;
  changeEmpty: number[];
  changeLoaded: number[];
  changeAgent: number[];
  firstSyncWall: number;
  firstSyncAgent: number;
  nftLoad: number;
  nftOneLine: number[];
  iptablesLoad: number;
  ours: { via: number[]; direct: number[] };
  iptables: { via: number[]; direct: number[] };
  throughput: { via: number; direct: number };
}

async function scale(): Promise<ScaleFigures> {
  return withLab(
    "bss",
    // Debug: the agent logs each incremental sync with its own duration, the figure under the one-change latency.
    { nodes: 2, backend: "vxlan", podsPerNode: 1, agentEnv: { TRELLIS_LOG_LEVEL: "debug" } },
    async (lab) => {
      const [client, server] = podPair(lab);
      await startPodServer(lab, server);
      const n1 = lab.layout.node(1);
      const serverIp = parseIpv4(server.ip) ?? 0;
      await sleep(2000);
      const rssEmpty = await rssMiB(agentPid(lab, 1));
      progress("one change at a time with an empty registry (node 1)");
      const empty = await probe<{ latency: number[] }>(lab, {
        mode: "changes",
        nodeNamespaces: [n1.ns],
        count: 30,
        baseline: 0,
        namePrefix: "empty",
      });

      progress(`stopping node 1's agent; writing ${SERVICES} Services × ${PER_SERVICE} endpoints`);
      await lab.killAgent(1, "SIGTERM");
      await probe(lab, {
        mode: "load",
        count: SERVICES,
        first: FIRST_IP,
        perService: PER_SERVICE,
        target: {
          name: "target",
          clusterIP: TARGET_IP,
          ports: [
            { port: TARGET_PORT, targetPort: POD_HTTP_PORT },
            { port: IPERF_PORT, targetPort: IPERF_PORT },
          ],
          endpoint: serverIp,
        },
      });
      // Node 2's agent programs the load as it arrives: let it finish, so node 1 starts on an otherwise idle machine.
      const n2 = lab.layout.node(2);
      for (let i = 0; i < 600; i++) {
        const map = await run(
          "ip",
          ["netns", "exec", n2.ns, "nft", "list", "map", "ip", "trellis-services", "service-ips"],
          { timeoutMs: 60_000 },
        );
        if ((map.stdout.match(/ : goto /g) ?? []).length >= SERVICES + 1) break;
        await sleep(500);
      }
      await sleep(2000);
      await lab.agentCli(["cleanup"], n1.ns, lab.agentEnv(n1)); // cold: no rules to adopt
      progress("starting node 1's agent: time to its first complete sync");
      const offset = (await readFile(join(n1.dir, "agent.log"))).length;
      const t0 = performance.now();
      await lab.startAgent(1);
      const sync = await fullSync(lab, 1, offset, SERVICES + 1);
      const firstSyncWall = performance.now() - t0;
      progress(
        `first full sync: ${firstSyncWall.toFixed(0)} ms from start (the sync itself ${sync.durationMs.toFixed(0)} ms)`,
      );
      await lab.waitReady(1, 30_000);
      // RSS once V8 has collected the first sync's garbage (its memory reducer runs some seconds after a burst).
      await sleep(15_000);
      const rssLoaded = await rssMiB(agentPid(lab, 1));
      progress(`one change at a time with ${SERVICES} Services (node 1)`);
      const changesFrom = (await readFile(join(n1.dir, "agent.log"))).length;
      const loaded = await probe<{ latency: number[] }>(lab, {
        mode: "changes",
        nodeNamespaces: [n1.ns],
        count: 30,
        baseline: 0,
        namePrefix: "loaded",
      });
      const agentChange = [
        ...(await readFile(join(n1.dir, "agent.log")))
          .subarray(changesFrom)
          .toString("utf8")
          .matchAll(/service rules updated services=\d+ changed=\d+ durationMs=([\d.]+)/g),
      ].map((m) => Number(m[1]));
      progress(
        `one change: p50 ${percentile(loaded.latency, 50).toFixed(1)} ms with ${SERVICES} Services, ${percentile(empty.latency, 50).toFixed(1)} ms without; RSS ${rssLoaded.toFixed(1)} vs ${rssEmpty.toFixed(1)} MiB`,
      );

      // nft's own cost for a one-line transaction against this table (it reads the table's chains and rules first):
      // a hairpin pair for an address no endpoint has, added and deleted.
      const nftOneLine: number[] = [];
      for (let i = 0; i < 10; i++) {
        for (const verb of ["add", "delete"]) {
          nftOneLine.push(
            await timed(() =>
              run("ip", ["netns", "exec", n1.ns, "nft", "-f", "-"], {
                input: `${verb} element ip trellis-services hairpin-endpoints { 172.30.255.254 . 172.30.255.254 }\n`,
              }),
            ),
          );
        }
      }
      const target = formatIpv4(TARGET_IP);
      const ours = await connectPair(client.name, target, server.ip, `trellis nftables, ${SERVICES} Services`);
      const via: number[] = [];
      const direct: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        progress(`throughput: round ${round + 1}/${ROUNDS}`);
        via.push(await iperf({ ns: client.name, ip: client.ip }, { ns: server.name, ip: server.ip }, SECONDS, target));
        direct.push(await iperf({ ns: client.name, ip: client.ip }, { ns: server.name, ip: server.ip }, SECONDS));
      }

      // Baseline for the first sync: nft loading the very table the agent wrote, into an empty kernel.
      await lab.killAgent(1, "SIGTERM");
      const nftIn = (args: string[], input?: string): Promise<unknown> =>
        run("ip", ["netns", "exec", n1.ns, "nft", ...args], {
          timeoutMs: 120_000,
          ...(input === undefined ? {} : { input }),
        });
      const dump = (
        await run("ip", ["netns", "exec", n1.ns, "nft", "list", "table", "ip", "trellis-services"], {
          timeoutMs: 60_000,
        })
      ).stdout;
      await nftIn(["delete", "table", "ip", "trellis-services"]);
      const nftLoad = await timed(() => nftIn(["-f", "-"], dump));
      await nftIn(["delete", "table", "ip", "trellis-services"]);

      // The anchor: kube-proxy's iptables layout for the same Services, the target halfway down KUBE-SERVICES.
      const synthetic = syntheticServices(SERVICES, FIRST_IP, PER_SERVICE, DNS_IP);
      synthetic.splice(Math.floor(synthetic.length / 2), 0, {
        name: "target",
        clusterIP: TARGET_IP,
        port: TARGET_PORT,
        targetPort: POD_HTTP_PORT,
        endpoints: [serverIp],
      });
      const restore = kubeProxyIptables(synthetic, POD_NETWORK);
      const iptablesLoad = await timed(() =>
        run("ip", ["netns", "exec", n1.ns, "iptables-restore", "--noflush"], { input: restore, timeoutMs: 900_000 }),
      );
      const iptables = await connectPair(
        client.name,
        target,
        server.ip,
        `kube-proxy iptables layout, ${SERVICES} Services`,
      );
      return {
        rssEmpty,
        rssLoaded,
        changeEmpty: empty.latency,
        changeLoaded: loaded.latency,
        changeAgent: agentChange,
        firstSyncWall,
        firstSyncAgent: sync.durationMs,
        nftLoad,
        nftOneLine,
        iptablesLoad,
        ours,
        iptables,
        throughput: { via: median(via), direct: median(direct) },
      };
    },
    progress,
  );
}

async function main(): Promise<void> {
  process.stderr.write(`convergence: ${AGENTS} agents\n`);
  const conv = await convergence();
  process.stderr.write(`scale: ${SERVICES} Services × ${PER_SERVICE} endpoints on 2 nodes\n`);
  const s = await scale();
  const us = (v: number): string => `${(v * 1000).toFixed(0)} µs`;
  const w50 = percentile(conv.watch, 50);
  const p = (values: readonly number[], q: number): number => percentile(values, q);
  // The p50 and p99 rows of one connect-latency pair: through the cluster IP vs straight to the pod.
  const connectRows = (layout: string, pair: { via: number[]; direct: number[] }): string[][] =>
    [50, 99].map((q) => [
      `connect via cluster IP (${layout}), p${q}`,
      us(p(pair.via, q)),
      `straight to the pod p${q}`,
      us(p(pair.direct, q)),
      ratio(p(pair.via, q), p(pair.direct, q)),
    ]);
  process.stdout.write(
    `Services: ${AGENTS} agents for convergence; ${SERVICES} Services × ${PER_SERVICE} endpoints on a 2-node lab for scale, latency and throughput\n\n`,
  );
  process.stdout.write(
    `${table([
      ["figure", "value", "baseline", "baseline value", "ratio"],
      [
        `registry change → rules on all ${AGENTS} agents, p50`,
        ms(p(conv.latency, 50)),
        "etcd watch latency p50",
        ms(w50),
        ratio(p(conv.latency, 50), w50),
      ],
      [
        `registry change → rules on all ${AGENTS} agents, p99`,
        ms(p(conv.latency, 99)),
        "etcd watch latency p50",
        ms(w50),
        ratio(p(conv.latency, 99), w50),
      ],
      [
        `agent start → first full sync, ${SERVICES + 1} Services (wall)`,
        ms(s.firstSyncWall),
        "nft -f of the same table",
        ms(s.nftLoad),
        ratio(s.firstSyncWall, s.nftLoad),
      ],
      [
        "  of which the sync itself (agent's durationMs)",
        ms(s.firstSyncAgent),
        "nft -f of the same table",
        ms(s.nftLoad),
        ratio(s.firstSyncAgent, s.nftLoad),
      ],
      [
        `one change with ${SERVICES} Services, p50`,
        ms(p(s.changeLoaded, 50)),
        "same, empty registry p50",
        ms(p(s.changeEmpty, 50)),
        ratio(p(s.changeLoaded, 50), p(s.changeEmpty, 50)),
      ],
      [
        `one change with ${SERVICES} Services, p99`,
        ms(p(s.changeLoaded, 99)),
        "same, empty registry p99",
        ms(p(s.changeEmpty, 99)),
        ratio(p(s.changeLoaded, 99), p(s.changeEmpty, 99)),
      ],
      [`  of which the agent's own sync (durationMs), p50`, ms(p(s.changeAgent, 50)), "", "", ""],
      [`  nft -f of a one-line transaction with ${SERVICES} Services, p50`, ms(p(s.nftOneLine, 50)), "", "", ""],
      [
        `agent RSS with ${SERVICES} Services`,
        `${s.rssLoaded.toFixed(1)} MiB`,
        "agent without Services",
        `${s.rssEmpty.toFixed(1)} MiB`,
        `+${(s.rssLoaded - s.rssEmpty).toFixed(1)} MiB`,
      ],
      ...connectRows("trellis nftables", s.ours),
      ...connectRows("kube-proxy iptables layout", s.iptables),
      [
        "connect p50, trellis vs the iptables layout",
        us(p(s.ours.via, 50)),
        "kube-proxy iptables layout",
        us(p(s.iptables.via, 50)),
        ratio(p(s.ours.via, 50), p(s.iptables.via, 50)),
      ],
      [
        `kube-proxy iptables layout: iptables-restore of ${SERVICES + 1} Services`,
        ms(s.iptablesLoad),
        "nft -f of ours",
        ms(s.nftLoad),
        ratio(s.iptablesLoad, s.nftLoad),
      ],
      [
        "TCP throughput via cluster IP (iperf3)",
        `${s.throughput.via.toFixed(2)} Gbit/s`,
        "straight to the pod",
        `${s.throughput.direct.toFixed(2)} Gbit/s`,
        ratio(s.throughput.via, s.throughput.direct),
      ],
    ])}\n`,
  );
  const goals = [
    ["change → all agents p99 ≤ 100 ms", p(conv.latency, 99) <= 100],
    ["first full sync ≤ 2 s", s.firstSyncWall <= 2000],
    ["one change at scale ≤ 50 ms (p99)", p(s.changeLoaded, 99) <= 50],
    ["RSS ≤ +50 MiB", s.rssLoaded - s.rssEmpty <= 50],
    ["connect ≤ 1.10× direct (p50)", p(s.ours.via, 50) / p(s.ours.direct, 50) <= 1.1],
    ["throughput ≥ 0.95×", s.throughput.via / s.throughput.direct >= 0.95],
  ] as const;
  process.stdout.write(`\ngoals: ${goals.map(([g, ok]) => `${g} ${ok ? "met" : "NOT met"}`).join("; ")}\n`);
}

await main();
