// Runs inside the lab's underlay namespace (started by convergence.ts): writes synthetic peer leases to etcd one
// at a time and times how long until the route is in the kernel of every node, read from netlink route events.
// Baseline in the same run: etcd's own watch latency (put → watch event) on the same etcd. With `dual`, each lease is
// a dual-stack key (flannel's "<v4>-24&<v6>-64") and counts once both its IPv4 and its IPv6 route are everywhere.
import { Etcd3 } from "etcd3";
import { etcdWatchLatency } from "./etcd-watch-latency.js";
import { openKernel } from "#lib/netlink/rtnetlink-kernel.js";
import type { Kernel } from "#lib/netlink/kernel.js";

interface ProbeArgs {
  readonly endpoint: string;
  readonly nodeNamespaces: readonly string[];
  readonly peers: number;
  readonly dual?: boolean;
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
  const watchLatency = await etcdWatchLatency(client, 50);

  // Synthetic peers take the /24s the agents did not.
  const taken = new Set(Object.keys(await client.getAll().prefix("/coreos.com/network/subnets/").strings()));
  const free: string[] = [];
  for (let third = 1; third <= 255 && free.length < args.peers; third++) {
    const v4 = `/coreos.com/network/subnets/172.30.${third}.0-24`;
    if (![...taken].some((k) => k === v4 || k.startsWith(`${v4}&`))) free.push(`172.30.${third}.0`);
  }
  if (free.length < args.peers) throw new Error(`only ${free.length} free subnets for ${args.peers} peers`);

  const convergence: number[] = [];
  for (let i = 0; i < args.peers; i++) {
    const subnet = free[i] ?? "";
    const key = `${subnet}/24`;
    // The IPv6 half where the agents' keeper would put it: the same place in fd30::/56 as the /24 in 172.30.0.0/16.
    const subnet6 = `fd30:0:0:${Number(subnet.split(".")[2]).toString(16)}::`;
    const publicIp = `10.42.0.${21 + (i % 230)}`;
    const value = JSON.stringify({
      PublicIP: publicIp,
      ...(args.dual === true ? { PublicIPv6: `fd42::${(21 + (i % 230)).toString(16)}` } : {}),
      BackendType: "vxlan",
      BackendData: { VNI: 1, VtepMAC: mac(i) },
      ...(args.dual === true ? { BackendV6Data: { VNI: 1, VtepMAC: mac(i + 4096) } } : {}),
    });
    const routes = args.dual === true ? [key, `${subnet6}/64`] : [key];
    const done = Promise.all(
      routes.map(
        (route) =>
          new Promise<void>((resolve) => {
            waiters.set(route, resolve);
          }),
      ),
    );
    const t0 = performance.now();
    const name = args.dual === true ? `${subnet}-24&${subnet6}-64` : `${subnet}-24`;
    await client.put(`/coreos.com/network/subnets/${name}`).value(value);
    await Promise.race([
      done,
      new Promise((_, reject) =>
        setTimeout(() => {
          reject(new Error(`route ${key} not on every node after 10 s`));
        }, 10_000),
      ),
    ]);
    convergence.push(performance.now() - t0);
    for (const route of routes) waiters.delete(route);
  }
  process.stdout.write(`${JSON.stringify({ watchLatency, convergence })}\n`);
}

try {
  await main();
} finally {
  for (const kernel of kernels) kernel.close();
  client.close();
}
