// Throughput, pod to pod across two nodes (iperf3, one TCP stream), each against a baseline in the same run:
//  - trellis VXLAN vs flannel's VXLAN topology built by hand (hand-built.ts: same MTU, same hops, no agent/plugin),
//    with masquerading on (the default: netfilter connection tracking sees every packet), off, and off with the
//    Services proxy off too (no table of the agent's in the path: isolates what connection tracking costs)
//  - trellis host-gw vs plain node-to-node on the lab's underlay, with masquerading on and off
//  - trellis VXLAN for the IPv6 pod network of a dual-stack lab (flannel-v6.1 over the IPv6 underlay) vs the same
//    topology built by hand for IPv6 (hand-built.ts: MTU 1430)
// Runs alternate between ours and the baseline; medians.
import { NamespaceSet } from "../../lab/src/netns.js";
import { podPair, withLab } from "./bench-lab.js";
import { handBuiltPods, handBuiltPods6 } from "./hand-built.js";
import { iperf, median } from "./iperf.js";
import { ratio, table } from "./stats.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

async function alternate(
  label: string,
  ours: () => Promise<number>,
  baseline: () => Promise<number>,
): Promise<{ ours: number; base: number }> {
  const o: number[] = [];
  const b: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    process.stderr.write(`  ${label}: round ${round + 1}/${ROUNDS}\n`);
    o.push(await ours());
    b.push(await baseline());
  }
  return { ours: median(o), base: median(b) };
}

async function main(): Promise<void> {
  const namespaces = new NamespaceSet();
  try {
    const [handA, handB] = await handBuiltPods(namespaces);
    const vxlan = await withLab("btv", { nodes: 2, backend: "vxlan", podsPerNode: 1 }, async (lab) => {
      const [a, b] = podPair(lab);
      return alternate(
        "vxlan",
        () => iperf({ ns: a.name, ip: a.ip }, { ns: b.name, ip: b.ip }, SECONDS),
        () => iperf(handA, handB, SECONDS),
      );
    });
    const unmasqueraded = await withLab(
      "btn",
      { nodes: 2, backend: "vxlan", podsPerNode: 1, agentEnv: { TRELLIS_IP_MASQ: "false" } },
      async (lab) => {
        const [a, b] = podPair(lab);
        return alternate(
          "vxlan, --ip-masq=false",
          () => iperf({ ns: a.name, ip: a.ip }, { ns: b.name, ip: b.ip }, SECONDS),
          () => iperf(handA, handB, SECONDS),
        );
      },
    );
    const untracked = await withLab(
      "btu",
      {
        nodes: 2,
        backend: "vxlan",
        podsPerNode: 1,
        agentEnv: { TRELLIS_IP_MASQ: "false", TRELLIS_SERVICES: "false" },
      },
      async (lab) => {
        const [a, b] = podPair(lab);
        return alternate(
          "vxlan, --ip-masq=false --services=false",
          () => iperf({ ns: a.name, ip: a.ip }, { ns: b.name, ip: b.ip }, SECONDS),
          () => iperf(handA, handB, SECONDS),
        );
      },
    );
    const hostgw = await withLab("bth", { nodes: 2, backend: "host-gw", podsPerNode: 1 }, async (lab) => {
      const [a, b] = podPair(lab);
      const n1 = lab.layout.node(1);
      const n2 = lab.layout.node(2);
      return alternate(
        "host-gw",
        () => iperf({ ns: a.name, ip: a.ip }, { ns: b.name, ip: b.ip }, SECONDS),
        () => iperf({ ns: n1.ns, ip: n1.ip }, { ns: n2.ns, ip: n2.ip }, SECONDS),
      );
    });
    const hostgwUnmasqueraded = await withLab(
      "btg",
      { nodes: 2, backend: "host-gw", podsPerNode: 1, agentEnv: { TRELLIS_IP_MASQ: "false" } },
      async (lab) => {
        const [a, b] = podPair(lab);
        const n1 = lab.layout.node(1);
        const n2 = lab.layout.node(2);
        return alternate(
          "host-gw, --ip-masq=false",
          () => iperf({ ns: a.name, ip: a.ip }, { ns: b.name, ip: b.ip }, SECONDS),
          () => iperf({ ns: n1.ns, ip: n1.ip }, { ns: n2.ns, ip: n2.ip }, SECONDS),
        );
      },
    );
    const [hand6A, hand6B] = await handBuiltPods6(namespaces);
    const vxlan6 = await withLab(
      "bt6",
      { nodes: 2, backend: "vxlan", podsPerNode: 1, ipFamily: "dual" },
      async (lab) => {
        const [a, b] = podPair(lab);
        if (a.ip6 === undefined || b.ip6 === undefined) throw new Error("the dual-stack pods have no IPv6 address");
        const [ip6a, ip6b] = [a.ip6, b.ip6];
        return alternate(
          "vxlan, IPv6 (dual-stack)",
          () => iperf({ ns: a.name, ip: ip6a }, { ns: b.name, ip: ip6b }, SECONDS),
          () => iperf(hand6A, hand6B, SECONDS),
        );
      },
    );
    const gbit = (v: number): string => `${v.toFixed(2)} Gbit/s`;
    process.stdout.write(
      `Throughput, pod to pod across two nodes: iperf3 TCP, ${SECONDS} s per run, median of ${ROUNDS} alternating runs\n\n`,
    );
    process.stdout.write(
      `${table([
        ["path", "ours", "baseline", "baseline path", "ratio"],
        [
          "trellis vxlan (MTU 1450)",
          gbit(vxlan.ours),
          gbit(vxlan.base),
          "flannel's vxlan topology by hand, MTU 1450",
          ratio(vxlan.ours, vxlan.base),
        ],
        [
          "trellis vxlan, --ip-masq=false",
          gbit(unmasqueraded.ours),
          gbit(unmasqueraded.base),
          "the same",
          ratio(unmasqueraded.ours, unmasqueraded.base),
        ],
        [
          "trellis vxlan, --ip-masq=false --services=false",
          gbit(untracked.ours),
          gbit(untracked.base),
          "the same",
          ratio(untracked.ours, untracked.base),
        ],
        [
          "trellis host-gw",
          gbit(hostgw.ours),
          gbit(hostgw.base),
          "plain node to node on the underlay",
          ratio(hostgw.ours, hostgw.base),
        ],
        [
          "trellis host-gw, --ip-masq=false",
          gbit(hostgwUnmasqueraded.ours),
          gbit(hostgwUnmasqueraded.base),
          "the same",
          ratio(hostgwUnmasqueraded.ours, hostgwUnmasqueraded.base),
        ],
        [
          "trellis vxlan IPv6, dual-stack (MTU 1430)",
          gbit(vxlan6.ours),
          gbit(vxlan6.base),
          "the IPv6 vxlan topology by hand, MTU 1430",
          ratio(vxlan6.ours, vxlan6.base),
        ],
      ])}\n`,
    );
    const verdict = (r: { ours: number; base: number }): string => (r.ours / r.base >= 0.95 ? "met" : "NOT met");
    process.stdout.write(
      `\ngoals (ratio ≥ 0.95): vxlan ${verdict(vxlan)} (masquerading on), ${verdict(unmasqueraded)} (off), ${verdict(untracked)} (off, no Services); host-gw ${verdict(hostgw)} (on), ${verdict(hostgwUnmasqueraded)} (off); vxlan IPv6 ${verdict(vxlan6)}\n`,
    );
    process.stdout.write(
      "masquerading and the Services proxy's NAT chains need netfilter connection tracking, which then sees every packet (flannel's --ip-masq and kube-proxy pay the same); the --services=false row has neither\n",
    );
  } finally {
    await namespaces.dispose();
  }
}

await main();
