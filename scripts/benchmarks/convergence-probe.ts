// Runs inside the lab's underlay namespace (started by convergence.ts): writes synthetic peer leases to etcd one
// at a time and times how long until the route is in the kernel of every node, read from netlink route events.
// Baseline in the same run: etcd's own watch latency (put → watch event) on the same etcd.
import { Etcd3 } from "etcd3";
import { openKernel } from "../../lib/src/netlink/rtnetlink-kernel.js";
import type { Kernel } from "../../lib/src/netlink/kernel.js";

interface ProbeArgs {
  readonly endpoint: string;
  readonly nodeNamespaces: readonly string[];
  readonly peers: number;
}

const args = JSON.parse(process.argv[2] ?? "{}") as ProbeArgs;
const client = new Etcd3({ hosts: [args.endpoint] });
const kernels: Kernel[] = args.nodeNamespaces.map((ns) => openKernel({ netns: ns }));
/** dst → namespaces that have reported the route. */
const seen = new Map<string, Set<number>>();
const waiters = new Map<string, () => void>();

kernels.forEach((kernel, i) => {
  kernel.watch((event) => {
    if (event.type !== "route" || event.action !== "new" || event.route.protocol !== 145) return;
    const key = `${event.route.dst}/${event.route.prefixLen}`;
    const nodes = seen.get(key) ?? new Set<number>();
    nodes.add(i);
    seen.set(key, nodes);
    if (nodes.size === kernels.length) waiters.get(key)?.();
  });
});

function mac(i: number): string {
  return `02:be:ef:00:${((i >> 8) & 255).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}`;
}

async function main(): Promise<void> {
  // Baseline: etcd's watch latency for the same kind of write.
  const watchLatency: number[] = [];
  const watcher = await client.watch().key("/bench/baseline").create();
  for (let i = 0; i < 50; i++) {
    const got = new Promise<void>((resolve) =>
      watcher.once("put", () => {
        resolve();
      }),
    );
    const t0 = performance.now();
    await client.put("/bench/baseline").value(String(i));
    await got;
    watchLatency.push(performance.now() - t0);
  }
  await watcher.cancel();

  // Synthetic peers take the /24s the agents did not.
  const taken = new Set(Object.keys(await client.getAll().prefix("/coreos.com/network/subnets/").strings()));
  const free: string[] = [];
  for (let third = 1; third <= 255 && free.length < args.peers; third++) {
    if (!taken.has(`/coreos.com/network/subnets/172.30.${third}.0-24`)) free.push(`172.30.${third}.0`);
  }
  if (free.length < args.peers) throw new Error(`only ${free.length} free subnets for ${args.peers} peers`);

  const convergence: number[] = [];
  for (let i = 0; i < args.peers; i++) {
    const subnet = free[i] ?? "";
    const key = `${subnet}/24`;
    const publicIp = `10.42.0.${21 + (i % 230)}`;
    const value = JSON.stringify({
      PublicIP: publicIp,
      BackendType: "vxlan",
      BackendData: { VNI: 1, VtepMAC: mac(i) },
    });
    const done = new Promise<void>((resolve) => {
      waiters.set(key, resolve);
    });
    const t0 = performance.now();
    await client.put(`/coreos.com/network/subnets/${subnet}-24`).value(value);
    await Promise.race([
      done,
      new Promise((_, reject) =>
        setTimeout(() => {
          reject(new Error(`route ${key} not on every node after 10 s`));
        }, 10_000),
      ),
    ]);
    convergence.push(performance.now() - t0);
    waiters.delete(key);
  }
  process.stdout.write(`${JSON.stringify({ watchLatency, convergence })}\n`);
}

try {
  await main();
} finally {
  for (const kernel of kernels) kernel.close();
  client.close();
}
