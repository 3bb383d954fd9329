// Pod-to-pod latency across two nodes: 1000 pings (RTT p50/p99) through trellis VXLAN vs flannel's VXLAN topology
// built by hand (same hops, same MTU) in the same run; 500 pings each, twice, alternating. The same for the IPv6 pod
// network of a dual-stack lab against the IPv6 topology built by hand.
import { run } from "../../lab/src/exec.js";
import { NamespaceSet } from "../../lab/src/netns.js";
import { podPair, withLab } from "./bench-lab.js";
import { handBuiltPods, handBuiltPods6, type PodEnd } from "./hand-built.js";
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

async function alternating(
  ours: [PodEnd, PodEnd],
  base: [PodEnd, PodEnd],
): Promise<{ ours: number[]; base: number[] }> {
  const o: number[] = [];
  const h: number[] = [];
  for (let round = 0; round < 2; round++) {
    process.stderr.write(`  latency: round ${round + 1}/2\n`);
    o.push(...(await rtts(ours[0], ours[1], PINGS / 2)));
    h.push(...(await rtts(base[0], base[1], PINGS / 2)));
  }
  return { ours: o, base: h };
}

async function main(): Promise<void> {
  const namespaces = new NamespaceSet();
  try {
    const hand = await handBuiltPods(namespaces);
    const hand6 = await handBuiltPods6(namespaces);
    const v4 = await withLab("btl", { nodes: 2, backend: "vxlan", podsPerNode: 1 }, async (lab) => {
      const [a, b] = podPair(lab);
      return alternating(
        [
          { ns: a.name, ip: a.ip },
          { ns: b.name, ip: b.ip },
        ],
        hand,
      );
    });
    const v6 = await withLab("btl6", { nodes: 2, backend: "vxlan", podsPerNode: 1, ipFamily: "dual" }, async (lab) => {
      const [a, b] = podPair(lab);
      if (a.ip6 === undefined || b.ip6 === undefined) throw new Error("the dual-stack pods have no IPv6 address");
      return alternating(
        [
          { ns: a.name, ip: a.ip6 },
          { ns: b.name, ip: b.ip6 },
        ],
        hand6,
      );
    });
    const ms = (v: number): string => `${v.toFixed(3)} ms`;
    process.stdout.write(
      `Latency, pod to pod across two nodes: ping RTT over ${v4.ours.length} pings per path, alternating with its baseline\n\n`,
    );
    const rows = (label: string, r: { ours: number[]; base: number[] }): string[][] => [
      [
        `${label} RTT p50`,
        ms(percentile(r.ours, 50)),
        ms(percentile(r.base, 50)),
        ratio(percentile(r.ours, 50), percentile(r.base, 50)),
      ],
      [
        `${label} RTT p99`,
        ms(percentile(r.ours, 99)),
        ms(percentile(r.base, 99)),
        ratio(percentile(r.ours, 99), percentile(r.base, 99)),
      ],
      [`${label} lost`, String(PINGS - r.ours.length), String(PINGS - r.base.length), ""],
    ];
    process.stdout.write(
      `${table([
        ["figure", "trellis vxlan", "hand-built vxlan", "ratio"],
        ...rows("IPv4", v4),
        ...rows("IPv6 (dual-stack)", v6),
      ])}\n`,
    );
  } finally {
    await namespaces.dispose();
  }
}

await main();
