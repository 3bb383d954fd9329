// The DNS benchmark's run of the real daemon: `trellis-agent dns` (as trellis-dns.service starts it: no lite mode)
// on a registry of the same Services in a real etcd on loopback, forwarding to a stand-in upstream on 127.0.0.2:53
// (resolv.conf has no port). Also times a registry change until the daemon answers it, against etcd's own watch
// latency in the same run.
import { spawn, type ChildProcess } from "node:child_process";
import { createSocket } from "node:dgram";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Etcd3 } from "etcd3";
import { etcdWatchLatency } from "./etcd-watch-latency.js";
import dnsPacket from "dns-packet";
import { EtcdServer } from "../../lab/src/etcd.js";
import { freePort } from "../../lab/src/ports.js";
import { REPO_ROOT } from "../../lab/src/paths.js";
import { EtcdKvStore } from "../../agent/src/kv/etcd-kv-store.js";
import type { KvOp } from "../../agent/src/kv/kv-store.js";
import { RegistryLayout } from "../../agent/src/services/registry-layout.js";
import { benchView, ZONE } from "./dns-workload.js";

/** etcd 3.4's default --max-txn-ops is 128. */
const OPS_PER_TXN = 120;
export const UPSTREAM_FOR_DAEMON = "127.0.0.2";

export interface Daemon {
  readonly port: number;
  readonly child: ChildProcess;
  /** Registry change → the daemon answers it, ms, per sample; and etcd's put → watch event in the same run. */
  changeLatency(samples: number): Promise<{ change: number[]; watch: number[] }>;
  stop(): Promise<void>;
}

/** One A query to 127.0.0.1:port; resolves with the answer's address or undefined (NXDOMAIN, no answer in 200 ms). */
function ask(port: number, name: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = createSocket("udp4");
    const timer = setTimeout(() => {
      socket.close();
      resolve(undefined);
    }, 200);
    socket.on("message", (message) => {
      clearTimeout(timer);
      socket.close();
      const answer = dnsPacket.decode(message).answers?.find((a) => a.type === "A");
      resolve(answer?.type === "A" ? answer.data : undefined);
    });
    socket.send(
      dnsPacket.encode({ type: "query", id: 1, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: "A", name }] }),
      port,
      "127.0.0.1",
    );
  });
}

export async function startDaemon(dir: string, services: number): Promise<Daemon> {
  const etcd = await EtcdServer.start();
  const client = new Etcd3({ hosts: [etcd.endpoint] });
  const kv = new EtcdKvStore(client, [etcd.endpoint]);
  const layout = new RegistryLayout("/trellis");
  let child: ChildProcess | undefined;
  try {
    const ops: KvOp[] = [
      {
        put: layout.config,
        value: JSON.stringify({ clusterIPRange: "10.100.0.0/16", clusterDomain: ZONE, dnsClusterIP: "10.100.255.250" }),
      },
    ];
    for (const s of benchView(services).services) {
      ops.push({
        put: layout.service(s.namespace, s.name),
        value: JSON.stringify({
          metadata: { name: s.name, namespace: s.namespace },
          spec: { clusterIP: s.clusterIP, ports: [{ name: "http", port: 80 }] },
        }),
      });
    }
    for (let i = 0; i < ops.length; i += OPS_PER_TXN) {
      // The KV port wants a guard on every transaction: a key nothing writes.
      await kv.commit([{ key: "/bench/never-written", absent: true }], ops.slice(i, i + OPS_PER_TXN));
    }
    const resolvConf = join(dir, "daemon-resolv.conf");
    await writeFile(resolvConf, `nameserver ${UPSTREAM_FOR_DAEMON}\n`);
    const port = await freePort();
    const log: string[] = [];
    child = spawn(
      process.execPath,
      [
        join(REPO_ROOT, "agent/bin/agent"),
        "dns",
        "--etcd-endpoints",
        etcd.endpoint,
        "--node-local-ip",
        "127.0.0.1",
        "--port",
        String(port),
        "--resolv-conf",
        resolvConf,
        "--register",
        "false",
        "--status-port",
        "0",
        "--log-format",
        "json",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => log.push(chunk));
    const first = benchView(1).services[0];
    const probeName = `${first?.name ?? ""}.${first?.namespace ?? ""}.svc.${ZONE}`;
    for (let i = 0; (await ask(port, probeName)) === undefined; i++) {
      if (i > 300 || child.exitCode !== null) throw new Error(`trellis-agent dns did not answer: ${log.join("")}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const running = child;
    return {
      port,
      child: running,
      async changeLatency(samples: number) {
        const change: number[] = [];
        const watch = await etcdWatchLatency(client, samples, "/bench/watch");
        for (let i = 0; i < samples; i++) {
          const name = `fresh-${i}`;
          const address = `10.100.250.${i + 1}`;
          const t1 = performance.now();
          await kv.commit(
            [{ key: layout.service("bench", name), absent: true }],
            [
              {
                put: layout.service("bench", name),
                value: JSON.stringify({
                  metadata: { name, namespace: "bench" },
                  spec: { clusterIP: address, ports: [{ port: 80 }] },
                }),
              },
            ],
          );
          while ((await ask(port, `${name}.bench.svc.${ZONE}`)) !== address) {
            if (performance.now() - t1 > 5000) throw new Error(`${name} not answered after 5 s`);
          }
          change.push(performance.now() - t1);
        }
        return { change, watch };
      },
      async stop() {
        running.kill("SIGTERM");
        await new Promise((resolve) => running.once("exit", resolve));
        client.close();
        await etcd.stop();
      },
    };
  } catch (error) {
    child?.kill("SIGKILL");
    client.close();
    await etcd.stop();
    throw error;
  }
}
