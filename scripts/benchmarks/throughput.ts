// Throughput, pod to pod across two nodes (iperf3, one TCP stream), each against a baseline in the same run:
//  - trellis VXLAN vs flannel's VXLAN topology built by hand (hand-built.ts: same MTU, same hops, no agent/plugin),
//    with masquerading on (the default: netfilter connection tracking sees every packet), off, and off with the
//    Services proxy off too (no table of the agent's in the path: isolates what connection tracking costs)
//  - trellis host-gw vs plain node-to-node on the lab's underlay, with masquerading on and off
//  - trellis VXLAN for the IPv6 pod network of a dual-stack lab (flannel-v6.1 over the IPv6 underlay) vs the same
//    topology built by hand for IPv6 (hand-built.ts: MTU 1430)
// Runs alternate between ours and the baseline; medians.
import type { Lab, UpOptions } from "../../lab/src/lab.js";
import { NamespaceSet } from "../../lab/src/netns.js";
import { podPair, withLab } from "./bench-lab.js";
import { handBuiltPods, handBuiltPods6 } from "./hand-built.js";
import { iperf, median, type IperfEnd } from "./iperf.js";
import { ratio, table } from "./stats.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const GOAL = 0.95;

type Ends = readonly [IperfEnd, IperfEnd];

/** One row: a lab, the two ends measured in it, and the two ends of its baseline. */
interface Case {
  /** The lab's namespace prefix, unique per case. */
  readonly prefix: string;
  /** The row's name in the table, and in the progress lines. */
  readonly path: string;
  readonly baselinePath: string;
  readonly lab: UpOptions;
  readonly ours: (lab: Lab) => Ends;
  readonly baseline: (lab: Lab) => Ends;
}

/** The first pod on node 1 and on node 2, by their address of a family. */
function pods(family: 4 | 6): (lab: Lab) => Ends {
  return (lab) => {
    const [a, b] = podPair(lab);
    const [ipA, ipB] = family === 4 ? [a.ip, b.ip] : [a.ip6, b.ip6];
    if (ipA === undefined || ipB === undefined) throw new Error(`the pods have no IPv${family} address`);
    return [
      { ns: a.name, ip: ipA },
      { ns: b.name, ip: ipB },
    ];
  };
}

/** Node 1 and node 2 on the lab's underlay. */
function nodes(lab: Lab): Ends {
  const [n1, n2] = [lab.layout.node(1), lab.layout.node(2)];
  return [
    { ns: n1.ns, ip: n1.ip },
    { ns: n2.ns, ip: n2.ip },
  ];
}

/** Runs ours and its baseline alternately, ROUNDS times each; the medians. */
async function measure(c: Case): Promise<{ ours: number; base: number }> {
  return withLab(c.prefix, c.lab, async (lab) => {
    const [oursA, oursB] = c.ours(lab);
    const [baseA, baseB] = c.baseline(lab);
    const o: number[] = [];
    const b: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      process.stderr.write(`  ${c.path}: round ${round + 1}/${ROUNDS}\n`);
      o.push(await iperf(oursA, oursB, SECONDS));
      b.push(await iperf(baseA, baseB, SECONDS));
    }
    return { ours: median(o), base: median(b) };
  });
}

async function main(): Promise<void> {
  const namespaces = new NamespaceSet();
  try {
    const hand = await handBuiltPods(namespaces);
    const hand6 = await handBuiltPods6(namespaces);
    const byHand = (): Ends => hand;
    const noMasq = { TRELLIS_IP_MASQ: "false" };
    const vxlan = { nodes: 2, backend: "vxlan", podsPerNode: 1 } as const;
    const hostgw = { nodes: 2, backend: "host-gw", podsPerNode: 1 } as const;
    const handVxlan = "flannel's vxlan topology by hand, MTU 1450";
    const cases: Case[] = [
      {
        prefix: "btv",
        path: "trellis vxlan (MTU 1450)",
        baselinePath: handVxlan,
        lab: vxlan,
        ours: pods(4),
        baseline: byHand,
      },
      {
        prefix: "btn",
        path: "trellis vxlan, --ip-masq=false",
        baselinePath: handVxlan,
        lab: { ...vxlan, agentEnv: noMasq },
        ours: pods(4),
        baseline: byHand,
      },
      {
        prefix: "btu",
        path: "trellis vxlan, --ip-masq=false --services=false",
        baselinePath: handVxlan,
        lab: { ...vxlan, agentEnv: { ...noMasq, TRELLIS_SERVICES: "false" } },
        ours: pods(4),
        baseline: byHand,
      },
      {
        prefix: "bth",
        path: "trellis host-gw",
        baselinePath: "plain node to node on the underlay",
        lab: hostgw,
        ours: pods(4),
        baseline: nodes,
      },
      {
        prefix: "btg",
        path: "trellis host-gw, --ip-masq=false",
        baselinePath: "plain node to node on the underlay",
        lab: { ...hostgw, agentEnv: noMasq },
        ours: pods(4),
        baseline: nodes,
      },
      {
        prefix: "bt6",
        path: "trellis vxlan IPv6, dual-stack (MTU 1430)",
        baselinePath: "the IPv6 vxlan topology by hand, MTU 1430",
        lab: { ...vxlan, ipFamily: "dual" },
        ours: pods(6),
        baseline: () => hand6,
      },
    ];
    const results: { c: Case; ours: number; base: number }[] = [];
    for (const c of cases) results.push({ c, ...(await measure(c)) });

    const gbit = (v: number): string => `${v.toFixed(2)} Gbit/s`;
    process.stdout.write(
      `Throughput, pod to pod across two nodes: iperf3 TCP, ${SECONDS} s per run, median of ${ROUNDS} alternating runs\n\n`,
    );
    process.stdout.write(
      `${table([
        ["path", "ours", "baseline", "baseline path", "ratio"],
        ...results.map(({ c, ours, base }) => [c.path, gbit(ours), gbit(base), c.baselinePath, ratio(ours, base)]),
      ])}\n`,
    );
    const verdicts = results.map(({ c, ours, base }) => `${c.path} ${ours / base >= GOAL ? "met" : "NOT met"}`);
    process.stdout.write(`\ngoals (ratio ≥ ${GOAL}): ${verdicts.join("; ")}\n`);
    process.stdout.write(
      "masquerading and the Services proxy's NAT chains need netfilter connection tracking, which then sees every packet (flannel's --ip-masq and kube-proxy pay the same); the --services=false row has neither\n",
    );
  } finally {
    await namespaces.dispose();
  }
}

await main();
