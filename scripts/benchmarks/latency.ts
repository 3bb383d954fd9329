// Pod-to-pod latency across two nodes: 1000 pings (RTT p50/p99) through trellis VXLAN vs flannel's VXLAN topology
// built by hand (same hops, same MTU) in the same run; 500 pings each, twice, alternating.
import { run } from "../../lab/src/exec.js";
import { NamespaceSet } from "../../lab/src/netns.js";
import { podPair, withLab } from "./bench-lab.js";
import { handBuiltPods, type PodEnd } from "./hand-built.js";
import { percentile, ratio, table } from "./stats.js";

const PINGS = Number(process.env.BENCH_PINGS ?? 1000);

async function rtts(from: PodEnd, to: PodEnd, count: number): Promise<number[]> {
  const { stdout } = await run(
    "ip",
    ["netns", "exec", from.ns, "ping", "-n", "-i", "0.005", "-c", String(count), "-W", "1", to.ip],
    { timeoutMs: count * 50 + 10_000 },
  );
  return [...stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
}

async function main(): Promise<void> {
  const namespaces = new NamespaceSet();
  try {
    const [handA, handB] = await handBuiltPods(namespaces);
    const { ours, base } = await withLab("btl", { nodes: 2, backend: "vxlan", podsPerNode: 1 }, async (lab) => {
      const [a, b] = podPair(lab);
      const o: number[] = [];
      const h: number[] = [];
      for (let round = 0; round < 2; round++) {
        process.stderr.write(`  latency: round ${round + 1}/2\n`);
        o.push(...(await rtts({ ns: a.name, ip: a.ip }, { ns: b.name, ip: b.ip }, PINGS / 2)));
        h.push(...(await rtts(handA, handB, PINGS / 2)));
      }
      return { ours: o, base: h };
    });
    const ms = (v: number): string => `${v.toFixed(3)} ms`;
    process.stdout.write(
      `Latency, pod to pod across two nodes: ping RTT over ${ours.length} pings (ours) and ${base.length} (baseline)\n\n`,
    );
    process.stdout.write(
      `${table([
        ["figure", "trellis vxlan", "hand-built vxlan", "ratio"],
        [
          "RTT p50",
          ms(percentile(ours, 50)),
          ms(percentile(base, 50)),
          ratio(percentile(ours, 50), percentile(base, 50)),
        ],
        [
          "RTT p99",
          ms(percentile(ours, 99)),
          ms(percentile(base, 99)),
          ratio(percentile(ours, 99), percentile(base, 99)),
        ],
        ["lost", String(PINGS - ours.length), String(PINGS - base.length), ""],
      ])}\n`,
    );
  } finally {
    await namespaces.dispose();
  }
}

await main();
