// How long `scripts/lab up` takes for 3 and 10 nodes (2 pods per node), against the bare topology in the same run:
// the same namespaces, veths and etcd with no agents and no pods — what the lab costs before trellis does anything.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EtcdServer } from "../../lab/src/etcd.js";
import { run } from "../../lab/src/exec.js";
import { UNDERLAY_BRIDGE_MAC } from "../../lab/src/layout.js";
import { NamespaceSet, ipIn } from "../../lab/src/netns.js";
import { withLab } from "./bench-lab.js";
import { ratio, table } from "./stats.js";

async function bareTopology(nodes: number): Promise<number> {
  const namespaces = new NamespaceSet();
  const dataDir = await mkdtemp(join(tmpdir(), "trellis-bench-bare-"));
  const started = performance.now();
  let etcd: EtcdServer | undefined;
  try {
    const hub = await namespaces.add();
    await ipIn(hub, "link", "add", "br0", "address", UNDERLAY_BRIDGE_MAC, "type", "bridge");
    await ipIn(hub, "addr", "add", "10.44.0.1/24", "dev", "br0");
    await ipIn(hub, "link", "set", "br0", "up");
    etcd = await EtcdServer.start({ host: "10.44.0.1", netns: hub, clientPort: 2379, peerPort: 2380, dataDir });
    for (let i = 1; i <= nodes; i++) {
      const ns = await namespaces.add();
      await namespaces.link({ ns: hub, ifname: `h${i}` }, { ns, ifname: "eth0", cidr: `10.44.0.${10 + i}/24` });
      await ipIn(hub, "link", "set", `h${i}`, "master", "br0");
      await run("ip", ["-n", ns, "route", "add", "default", "via", "10.44.0.1"]);
    }
    return performance.now() - started;
  } finally {
    await etcd?.stop();
    await namespaces.dispose();
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const rows: string[][] = [["nodes", "lab up (2 pods/node)", "bare topology", "ratio"]];
  for (const nodes of [3, 10]) {
    process.stderr.write(`  lab up: ${nodes} nodes\n`);
    const bare = await bareTopology(nodes);
    const started = performance.now();
    const up = await withLab(`blu${nodes}`, { nodes, backend: "vxlan", podsPerNode: 2 }, () =>
      Promise.resolve(performance.now() - started),
    );
    rows.push([String(nodes), `${(up / 1000).toFixed(2)} s`, `${(bare / 1000).toFixed(2)} s`, ratio(up, bare)]);
  }
  process.stdout.write(
    `Lab up time (etcd, nodes with agents ready, pods ADDed through the plugin) vs the bare topology\n\n${table(rows)}\n`,
  );
}

await main();
