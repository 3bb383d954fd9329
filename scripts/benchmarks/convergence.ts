// Convergence benchmark: 10 agents in the lab + 240 synthetic peer leases.
//  - lease write → route on every agent: p50/p99, against etcd's own watch latency (same run) as baseline
//  - agent start → ready with 249 peers programmed (cold: its datapath removed first), against a bare node start
//  - agent RSS with 249 peers, against a bare idle node process
//  - the same lease-write-to-route figures on a dual-stack lab, each lease one dual-stack key (both routes counted)
import type { Lab } from "../../lab/src/lab.js";
import { run, start } from "../../lab/src/exec.js";
import { rssMiB, runProbe, withLab } from "./bench-lab.js";
import { ms, percentile, ratio, table } from "./stats.js";

const NODES = Number(process.env.BENCH_NODES ?? 10);
const PEERS = Number(process.env.BENCH_PEERS ?? 240);

interface BareNode {
  readonly startMs: number;
  readonly rss: number;
}

async function bareNode(): Promise<BareNode> {
  const t0 = performance.now();
  await run(process.execPath, ["-e", "0"]);
  const startMs = performance.now() - t0;
  const idle = start("idle-node", process.execPath, ["-e", "setInterval(() => {}, 1000)"]);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const rss = await rssMiB(idle.pid ?? 0);
  await idle.stop();
  return { startMs, rss };
}

interface Probed {
  readonly watchLatency: number[];
  readonly convergence: number[];
}

/** Writes the synthetic leases from the underlay namespace and times them to every node's kernel. */
function probe(lab: Lab, dual: boolean): Promise<Probed> {
  const nodeNamespaces = lab.current.nodes.map((n) => lab.layout.node(n.index).ns);
  process.stderr.write(`writing ${PEERS} ${dual ? "dual-stack " : ""}peer leases one by one\n`);
  return runProbe<Probed>(lab, "convergence-probe", { nodeNamespaces, peers: PEERS, dual });
}

const progress = (line: string): void => {
  process.stderr.write(`  ${line}\n`);
};

/** The IPv4 figures: convergence, then a cold start of the last node with every peer present, and RSS. */
async function ipv4(
  lab: Lab,
): Promise<Probed & { readyWall: number; startupMs: number; routes: number; rss: number; bare: BareNode }> {
  const probed = await probe(lab, false);
  // Cold start of the last node with every peer present: stop it, remove its datapath, start it again.
  const last = lab.current.nodes[lab.current.nodes.length - 1]?.index ?? NODES;
  const node = lab.layout.node(last);
  await lab.killAgent(last, "SIGKILL");
  await lab.agentCli(["cleanup"], node.ns, lab.agentEnv(node));
  const t0 = performance.now();
  await lab.startAgent(last);
  await lab.waitReady(last, 30_000);
  const readyWall = performance.now() - t0;
  const log = await lab.agentLog(last);
  const readyLine = [...log.matchAll(/ready .*peers=(\d+) startupMs=(\d+)/g)].pop();
  const routes = (await run("ip", ["-n", node.ns, "route", "show", "proto", "145"])).stdout.trim().split("\n").length;
  const agentPid = lab.current.nodes.find((n) => n.index === 1)?.agentPid ?? 0;
  const rss = await rssMiB(agentPid);
  // The baselines beside the running lab, as the agent's figures were taken.
  const bare = await bareNode();
  return { ...probed, readyWall, startupMs: Number(readyLine?.[2] ?? NaN), routes, rss, bare };
}

async function main(): Promise<void> {
  process.stderr.write(`building a ${NODES}-node lab\n`);
  // One lab at a time on two cores: the IPv4 one is gone before the dual-stack one is built.
  const { watchLatency, convergence, readyWall, startupMs, routes, rss, bare } = await withLab(
    "bcv",
    { nodes: NODES, backend: "vxlan" },
    ipv4,
    progress,
  );
  process.stderr.write(`building a ${NODES}-node dual-stack lab\n`);
  const dual = await withLab(
    "bcd",
    { nodes: NODES, backend: "vxlan", ipFamily: "dual" },
    (lab) => probe(lab, true),
    progress,
  );
  const d50 = percentile(dual.watchLatency, 50);

  const peersKnown = NODES - 1 + PEERS;
  const w50 = percentile(watchLatency, 50);
  process.stdout.write(
    `Convergence: ${NODES} agents (vxlan) in the lab + ${PEERS} synthetic peer leases, one etcd\n\n`,
  );
  process.stdout.write(
    `${table([
      ["figure", "value", "baseline", "ratio"],
      ["etcd watch latency (put → event), p50", ms(w50), "", ""],
      [
        "lease write → route on every agent, p50",
        ms(percentile(convergence, 50)),
        "etcd watch p50",
        ratio(percentile(convergence, 50), w50),
      ],
      [
        "lease write → route on every agent, p99",
        ms(percentile(convergence, 99)),
        "etcd watch p50",
        ratio(percentile(convergence, 99), w50),
      ],
      ["lease write → route on every agent, max", ms(Math.max(...convergence)), "", ""],
      [
        "dual-stack: lease write → both routes on every agent, p50",
        ms(percentile(dual.convergence, 50)),
        "etcd watch p50 (that run)",
        ratio(percentile(dual.convergence, 50), d50),
      ],
      [
        "dual-stack: lease write → both routes on every agent, p99",
        ms(percentile(dual.convergence, 99)),
        "etcd watch p50 (that run)",
        ratio(percentile(dual.convergence, 99), d50),
      ],
      [
        `cold start → ready, ${peersKnown} peers (wall, incl. node start)`,
        ms(readyWall),
        "bare `node -e 0`",
        ratio(readyWall, bare.startMs),
      ],
      ["  of which inside the agent (startupMs)", ms(startupMs), "", ""],
      [`  routes programmed at ready`, String(routes), `expected ${peersKnown}`, ""],
      [`agent RSS with ${peersKnown} peers`, `${rss.toFixed(1)} MiB`, "idle bare node", ratio(rss, bare.rss)],
      ["bare idle node RSS", `${bare.rss.toFixed(1)} MiB`, "", ""],
    ])}\n`,
  );
  const goals = [
    ["p99 ≤ 250 ms", percentile(convergence, 99) <= 250],
    ["dual-stack p99 ≤ 250 ms", percentile(dual.convergence, 99) <= 250],
    ["ready ≤ 1 s", readyWall <= 1000],
    ["RSS ≤ 80 MiB", rss <= 80],
  ] as const;
  process.stdout.write(`\ngoals: ${goals.map(([g, ok]) => `${g} ${ok ? "met" : "NOT met"}`).join("; ")}\n`);
}

await main();
