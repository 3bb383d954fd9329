// The benchmarks' common baseline: etcd's own latency from a put to its watch event, on the same etcd, same run.
import type { Etcd3 } from "etcd3";

export async function etcdWatchLatency(client: Etcd3, samples: number, key = "/bench/baseline"): Promise<number[]> {
  const latency: number[] = [];
  const watcher = await client.watch().key(key).create();
  try {
    for (let i = 0; i < samples; i++) {
      const got = new Promise<void>((resolve) =>
        watcher.once("put", () => {
          resolve();
        }),
      );
      const t0 = performance.now();
      await client.put(key).value(String(i));
      await got;
      latency.push(performance.now() - t0);
    }
  } finally {
    await watcher.cancel();
  }
  return latency;
}
