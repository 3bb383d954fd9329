// Lease benchmark: 250 concurrent acquirers, each with its own etcd client, against one real etcd and a pool of
// 254 /24s. Baseline measured in the same run: one acquirer alone (no contention) on the same etcd.
import { systemClock } from "#lib/clock.js";
import { EtcdServer } from "../../lab/src/etcd.js";
import { validateNetworkConfig } from "../../agent/src/config/network-config.js";
import { createEtcdClient } from "../../agent/src/etcd/client.js";
import { EtcdRegistry } from "../../agent/src/lease/etcd-registry.js";
import { LeaseKeeper } from "../../agent/src/lease/keeper.js";
import { formatCidr } from "#lib/ipv4.js";
import { ms, percentile, ratio, table } from "./stats.js";

const ACQUIRERS = Number(process.env.BENCH_ACQUIRERS ?? 250);
const BASELINE_RUNS = 30;
const config = validateNetworkConfig({ Network: "172.30.0.0/16", SubnetMax: "172.30.254.0" });

async function registry(server: EtcdServer, prefix: string): Promise<EtcdRegistry> {
  const client = await createEtcdClient({ endpoints: [server.endpoint], requestTimeoutMs: 10_000, retry: true });
  const reg = new EtcdRegistry(client, prefix, [server.endpoint], 10_000);
  // Connect first, as the agent does: it reads the network config before it acquires.
  await reg.getNetworkConfig();
  return reg;
}

function keeper(reg: EtcdRegistry, i: number): LeaseKeeper {
  return new LeaseKeeper({
    registry: reg,
    clock: systemClock,
    config,
    attrs: {
      publicIp: `10.${Math.floor(i / 250) + 1}.${Math.floor((i % 250) / 250)}.${(i % 250) + 1}`,
      backendType: "vxlan",
      vni: 1,
      vtepMac: "02:00:00:00:00:01",
    },
    ttlSeconds: 3600,
  });
}

async function main(): Promise<void> {
  const server = await EtcdServer.start(
    process.env.BENCH_ETCD_DIR === undefined ? {} : { dataDir: process.env.BENCH_ETCD_DIR },
  );
  const registries: EtcdRegistry[] = [];
  try {
    // Baseline: one acquirer at a time, a fresh prefix each, so every acquisition is uncontended.
    const baseline: number[] = [];
    for (let run = 0; run < BASELINE_RUNS; run++) {
      const reg = await registry(server, `/bench-solo-${run}`);
      registries.push(reg);
      const started = performance.now();
      await keeper(reg, run).acquireOnce();
      baseline.push(performance.now() - started);
    }

    // Contended: ACQUIRERS clients race for the pool at once.
    const racers: EtcdRegistry[] = [];
    for (let i = 0; i < ACQUIRERS; i++) racers.push(await registry(server, "/bench-race"));
    registries.push(...racers);
    let racesLost = 0;
    let failures = 0;
    const times: number[] = [];
    const subnets: string[] = [];
    const started = performance.now();
    await Promise.all(
      racers.map(async (reg, i) => {
        const k = keeper(reg, i);
        k.events.on((e) => {
          if (e.type === "race-lost") racesLost += 1;
        });
        const t0 = performance.now();
        try {
          const lease = await k.acquire(AbortSignal.timeout(60_000));
          times.push(performance.now() - t0);
          subnets.push(formatCidr(lease.subnet));
        } catch {
          failures += 1;
        }
      }),
    );
    const wall = performance.now() - started;
    const duplicates = subnets.length - new Set(subnets).size;
    const base50 = percentile(baseline, 50);
    process.stdout.write(
      `Lease acquisition: ${ACQUIRERS} concurrent acquirers (one etcd client each), pool of 254 /24s, etcd 3.4 on loopback\n\n`,
    );
    process.stdout.write(
      `${table([
        ["figure", "value", "ratio to baseline"],
        ["baseline: one uncontended acquire, p50", ms(base50), "1.00×"],
        [
          "baseline: one uncontended acquire, p99",
          ms(percentile(baseline, 99)),
          ratio(percentile(baseline, 99), base50),
        ],
        ["contended acquire, p50", ms(percentile(times, 50)), ratio(percentile(times, 50), base50)],
        ["contended acquire, p99", ms(percentile(times, 99)), ratio(percentile(times, 99), base50)],
        ["all acquirers done (wall)", ms(wall), ratio(wall, base50)],
        ["failures (must be 0)", String(failures), ""],
        ["duplicate subnets (must be 0)", String(duplicates), ""],
        ["lost races, retried", String(racesLost), ""],
      ])}\n`,
    );
    process.stdout.write(`\ngoal p99 <= 1000 ms: ${percentile(times, 99) <= 1000 ? "met" : "NOT met"}\n`);
    if (failures > 0 || duplicates > 0) process.exitCode = 1;
  } finally {
    for (const reg of registries) reg.close();
    await server.stop();
  }
}

await main();
