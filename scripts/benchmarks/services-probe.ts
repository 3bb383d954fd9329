// Runs inside the lab's underlay namespace (started by services.ts, where etcd listens), in one of two modes:
//   changes {endpoint, nodeNamespaces, count, baseline}  creates `count` Services one at a time through the
//       registry's own transaction and times each until its element is in the service map of every node, read from
//       `nft monitor` in each node; baseline in the same run: etcd's watch latency (put → event), `baseline` samples
//   load {endpoint, count, first, perService, target}  writes service-set.ts's selectorless Services with their
//       cluster IPs and explicit endpoints in batched transactions (the registry's keys and values, as the CLI writes
//       them), and `target`, one more Service whose endpoint answers (for traffic)
// Prints one JSON object on stdout.
import { randomUUID } from "node:crypto";
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { Etcd3 } from "etcd3";
import { etcdWatchLatency } from "./etcd-watch-latency.js";
import { formatIpv4 } from "#lib/ipv4.js";
import { EtcdKvStore } from "../../agent/src/kv/etcd-kv-store.js";
import type { KvOp } from "../../agent/src/kv/kv-store.js";
import { createService, readServiceNetworkConfig } from "../../agent/src/services/service-admin.js";
import { endpointsObject } from "../../agent/src/services/endpoints-spec.js";
import { DEFAULT_REGISTRY_PREFIX, RegistryLayout } from "../../agent/src/services/registry-layout.js";
import { serviceObject, type ServiceSpec } from "../../agent/src/services/service-spec.js";
import { syntheticServices } from "./service-set.js";

interface ChangesArgs {
  readonly mode: "changes";
  readonly endpoint: string;
  readonly nodeNamespaces: readonly string[];
  readonly count: number;
  readonly baseline: number;
  readonly namePrefix: string;
}

interface LoadArgs {
  readonly mode: "load";
  readonly endpoint: string;
  /** syntheticServices(count, first, perService, the DNS address) */
  readonly count: number;
  readonly first: number;
  readonly perService: number;
  /** One more Service whose endpoint answers (for traffic). */
  readonly target: {
    readonly name: string;
    readonly clusterIP: number;
    readonly ports: readonly { readonly port: number; readonly targetPort: number }[];
    readonly endpoint: number;
  };
}

/** etcd 3.4's default --max-txn-ops is 128: three keys per Service. */
const SERVICES_PER_TXN = 42;

const args = JSON.parse(process.argv[2] ?? "{}") as ChangesArgs | LoadArgs;
const client = new Etcd3({ hosts: [args.endpoint] });
const kv = new EtcdKvStore(client, [args.endpoint]);
const layout = new RegistryLayout(DEFAULT_REGISTRY_PREFIX);

function spec(
  name: string,
  clusterIP: number | undefined,
  ports: readonly { port: number; targetPort: number }[],
): ServiceSpec {
  return {
    namespace: "bench",
    name,
    clusterIP,
    ports: ports.map((p, i) => ({ name: `p${i}`, port: p.port, targetPort: p.targetPort, protocol: "TCP" as const })),
    selector: undefined,
    sessionAffinity: "None",
    affinityTimeoutSeconds: 10_800,
  };
}

function serviceOps(s: ServiceSpec & { readonly clusterIP: number }, ips: readonly number[]): KvOp[] {
  const clusterIP = s.clusterIP;
  const object = serviceObject(s, clusterIP, { uid: randomUUID(), creationTimestamp: new Date().toISOString() });
  return [
    { put: layout.service(s.namespace, s.name), value: JSON.stringify(object) },
    { put: layout.clusterIp(clusterIP), value: `${s.namespace}/${s.name}` },
    {
      put: layout.endpoints(s.namespace, s.name),
      value: JSON.stringify(
        endpointsObject(
          s,
          ips.map((ip) => ({ ip })),
        ),
      ),
    },
  ];
}

async function load(a: LoadArgs): Promise<unknown> {
  const config = await readServiceNetworkConfig({ kv, layout });
  const t0 = performance.now();
  const ops = syntheticServices(a.count, a.first, a.perService, config.dnsClusterIP).flatMap((svc) =>
    serviceOps(
      { ...spec(svc.name, svc.clusterIP, [{ port: svc.port, targetPort: svc.targetPort }]), clusterIP: svc.clusterIP },
      svc.endpoints,
    ),
  );
  const t = a.target;
  ops.push(...serviceOps({ ...spec(t.name, t.clusterIP, t.ports), clusterIP: t.clusterIP }, [t.endpoint]));
  for (let i = 0; i < ops.length; i += SERVICES_PER_TXN * 3) {
    // The KV port wants a guard on every transaction: a key nothing writes.
    if (!(await kv.commit([{ key: "/bench/never-written", absent: true }], ops.slice(i, i + SERVICES_PER_TXN * 3))))
      throw new Error("bulk transaction refused");
  }
  return { writeMs: performance.now() - t0 };
}

/** `nft monitor` in each node: resolves a waiter once every node has printed a line naming its address. */
function monitors(namespaces: readonly string[]): {
  children: ChildProcess[];
  wait: (ip: string, timeoutMs?: number) => Promise<void>;
} {
  const seen = new Map<string, Set<number>>();
  const waiters = new Map<string, () => void>();
  const children = namespaces.map((ns, i) => {
    const child = spawn("ip", ["netns", "exec", ns, "nft", "monitor", "new", "elements"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (!line.includes("service-ips")) return;
      for (const match of line.matchAll(/(\d+\.\d+\.\d+\.\d+) \. tcp/g)) {
        const ip = match[1] ?? "";
        const nodes = seen.get(ip) ?? new Set<number>();
        nodes.add(i);
        seen.set(ip, nodes);
        if (nodes.size === namespaces.length) waiters.get(ip)?.();
      }
    });
    return child;
  });
  const wait = (ip: string, timeoutMs = 10_000): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      if ((seen.get(ip)?.size ?? 0) === namespaces.length) {
        resolve();
        return;
      }
      const timer = setTimeout(() => {
        reject(new Error(`${ip} not in the service map of every node after ${timeoutMs} ms`));
      }, timeoutMs);
      waiters.set(ip, () => {
        clearTimeout(timer);
        waiters.delete(ip);
        resolve();
      });
    });
  return { children, wait };
}

async function changes(a: ChangesArgs): Promise<unknown> {
  const watchLatency = await etcdWatchLatency(client, a.baseline);

  const { children, wait } = monitors(a.nodeNamespaces);
  try {
    const config = await readServiceNetworkConfig({ kv, layout });
    const deps = { kv, layout, now: () => new Date(), random: Math.random };
    const create = async (name: string): Promise<string> => {
      const created = await createService(deps, spec(name, undefined, [{ port: 8080, targetPort: 80 }]), config, {
        apiVersion: "v1",
        kind: "Endpoints",
        subsets: [{ addresses: [{ ip: "172.30.250.1" }], ports: [{ name: "p0", port: 80, protocol: "TCP" }] }],
      });
      return formatIpv4(created.clusterIP as number);
    };
    // `nft monitor` reads the whole ruleset before it reports anything (seconds with 10,000 Services): untimed
    // Services, one every 2 s, until one is seen by every monitor — then all are listening.
    for (let w = 0; ; w++) {
      if (w === 60) throw new Error("the nft monitors never all reported a new Service");
      if (
        await wait(await create(`${a.namePrefix}-warmup-${w}`), 2000).then(
          () => true,
          () => false,
        )
      )
        break;
    }
    const latency: number[] = [];
    for (let i = 0; i < a.count; i++) {
      const t0 = performance.now();
      await wait(await create(`${a.namePrefix}-${i}`));
      latency.push(performance.now() - t0);
    }
    return { watchLatency, latency };
  } finally {
    for (const child of children) child.kill("SIGTERM");
  }
}

try {
  const result = args.mode === "load" ? await load(args) : await changes(args);
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  client.close();
}
