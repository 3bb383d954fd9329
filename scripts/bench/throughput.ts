// Throughput benchmark, every figure against a baseline in the same run:
//  - through trellis VXLAN (2 lab nodes) vs a hand-built kernel VXLAN with the same MTU on the same kind of underlay
//  - through host-gw routes (2 lab nodes) vs plain node-to-node on the lab's underlay
// Traffic runs between addresses behind the nodes (their gateway addresses on cni0). Runs alternate; medians.
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../../lab/src/exec.js";
import { Lab, type Backend } from "../../lab/src/lab.js";
import { LabLayout } from "../../lab/src/layout.js";
import { NamespaceSet, ipIn } from "../../lab/src/netns.js";
import { iperf, median, type IperfEnd } from "./iperf.js";
import { ratio, table } from "./stats.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

async function withLab<T>(prefix: string, backend: Backend, fn: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = new Lab(new LabLayout(prefix, await mkdtemp(join(tmpdir(), `trellis-bench-${prefix}-`))));
  const onExit = (): void => { lab.downSync(); };
  process.once("exit", onExit);
  try {
    await lab.up({ nodes: 2, backend });
    return await fn(lab);
  } finally {
    process.removeListener("exit", onExit);
    await lab.down();
  }
}

/** Two namespaces behind a bridge namespace (like the lab's underlay), joined by a hand-made kernel VXLAN, MTU 1450. */
async function handBuiltVxlan(namespaces: NamespaceSet): Promise<[IperfEnd, IperfEnd]> {
  const hub = await namespaces.add();
  await ipIn(hub, "link", "add", "br0", "type", "bridge");
  await ipIn(hub, "link", "set", "br0", "up");
  const ends: IperfEnd[] = [];
  for (const i of [1, 2]) {
    const ns = await namespaces.add();
    await namespaces.link({ ns: hub, ifname: `h${i}` }, { ns, ifname: "eth0", cidr: `10.43.0.${i}/24` });
    await ipIn(hub, "link", "set", `h${i}`, "master", "br0");
    await ipIn(ns, "link", "add", "vx0", "type", "vxlan", "id", "100", "local", `10.43.0.${i}`, "dev", "eth0", "dstport", "8472", "nolearning");
    await ipIn(ns, "link", "set", "vx0", "mtu", "1450", "address", `02:00:00:00:64:0${i}`, "up");
    await ipIn(ns, "addr", "add", `10.201.0.${i}/24`, "dev", "vx0");
    const peer = 3 - i;
    await ipIn(ns, "neigh", "add", `10.201.0.${peer}`, "lladdr", `02:00:00:00:64:0${peer}`, "dev", "vx0", "nud", "permanent");
    await run("bridge", ["-n", ns, "fdb", "append", `02:00:00:00:64:0${peer}`, "dev", "vx0", "dst", `10.43.0.${peer}`, "self", "permanent"]);
    ends.push({ ns, ip: `10.201.0.${i}` });
  }
  const [a, b] = ends;
  if (a === undefined || b === undefined) throw new Error("hand-built pair missing");
  return [a, b];
}

async function gateways(lab: Lab): Promise<[IperfEnd, IperfEnd]> {
  const [a, b] = await lab.ensureGateways();
  if (a === undefined || b === undefined) throw new Error("lab without two nodes");
  return [a, b];
}

async function alternate(label: string, ours: () => Promise<number>, baseline: () => Promise<number>): Promise<{ ours: number; base: number }> {
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
    const [handA, handB] = await handBuiltVxlan(namespaces);
    const vxlan = await withLab("btv", "vxlan", async (lab) => {
      const [a, b] = await gateways(lab);
      return alternate("vxlan", () => iperf(a, b, SECONDS), () => iperf(handA, handB, SECONDS));
    });
    const hostgw = await withLab("bth", "host-gw", async (lab) => {
      const [a, b] = await gateways(lab);
      const n1 = lab.layout.node(1);
      const n2 = lab.layout.node(2);
      return alternate("host-gw", () => iperf(a, b, SECONDS), () => iperf({ ns: n1.ns, ip: n1.ip }, { ns: n2.ns, ip: n2.ip }, SECONDS));
    });
    const gbit = (v: number): string => `${v.toFixed(2)} Gbit/s`;
    process.stdout.write(`Throughput: iperf3 TCP, ${SECONDS} s per run, median of ${ROUNDS} alternating runs, one stream\n\n`);
    process.stdout.write(`${table([
      ["path", "ours", "baseline", "baseline path", "ratio"],
      ["trellis vxlan (MTU 1450)", gbit(vxlan.ours), gbit(vxlan.base), "hand-built kernel vxlan, MTU 1450", ratio(vxlan.ours, vxlan.base)],
      ["trellis host-gw", gbit(hostgw.ours), gbit(hostgw.base), "plain node to node on the underlay", ratio(hostgw.ours, hostgw.base)],
    ])}\n`);
    process.stdout.write(`\ngoals: vxlan ratio ≥ 0.95 ${vxlan.ours / vxlan.base >= 0.95 ? "met" : "NOT met"}; host-gw ratio ≥ 0.95 ${hostgw.ours / hostgw.base >= 0.95 ? "met" : "NOT met"}\n`);
  } finally {
    await namespaces.dispose();
  }
}

await main();
