// Benchmark: our CNI plugin against the reference bridge + host-local (Debian containernetworking-plugins 1.1.1,
// /usr/lib/cni) with an equivalent config, in the same run, interleaved so all see the same machine load. Ours twice:
// through the agent's CNI service (the shim's normal path, decision 0011; the service runs as the agent hosts it) and
// standalone (agentSocket "", the shim's fallback: node on the bundled plugin). Prints p50/p99 per operation,
// ours/reference ratios, our own work (via the agent: the whole ADD; standalone: ADD wall − a bare `node -e 0` start
// measured in the same run), then 50 concurrent ADDs (and DELs) wall time for each.
//   scripts/bench cni [--pairs N] [--concurrent N]
// Runs as root. Everything lives in namespaces with a per-run prefix and a temp dir, removed at the end; the
// measuring half runs inside the node namespace (as a runtime does), so plugins are spawned directly.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { NamespaceSet } from "../../lab/src/netns.js";
import { CNI_BIN } from "../../lab/src/paths.js";
import threadPool from "../../cni-plugin/src/service/thread-pool.cjs";

interface Setup {
  dir: string;
  pod: string;
  pods: string[];
  pairs: number;
  concurrent: number;
}

interface Plugin {
  label: string;
  bin: string;
  config: string;
}

const REFERENCE_DIR = "/usr/lib/cni";
const SUBNET_ENV =
  "FLANNEL_NETWORK=172.30.0.0/16\nFLANNEL_SUBNET=172.30.5.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";

function plugins(dir: string): Plugin[] {
  // Each variant its own lease (subnet file), bridge and store, like the two reference variants.
  const ours = (agentSocket: string, n: number): Record<string, unknown> => ({
    cniVersion: "1.0.0",
    name: `bench${n}`,
    type: "trellis",
    subnetFile: join(dir, `subnet${n}.env`),
    dataDir: join(dir, `ours${n}`),
    bridge: `cnitr${n}`,
    agentSocket,
  });
  // The same network shape: gateway on the bridge, default route, hairpin, MTU, /24 from a host-local range.
  const reference = (ipMasq: boolean, n: number): Record<string, unknown> => ({
    cniVersion: "1.0.0",
    name: `bench-ref${n}`,
    type: "bridge",
    bridge: `cniref${n}`,
    isGateway: true,
    isDefaultGateway: true,
    hairpinMode: true,
    mtu: 1450,
    ipMasq,
    ipam: { type: "host-local", dataDir: join(dir, `ref${n}`), ranges: [[{ subnet: `172.30.${6 + n}.0/24` }]] },
  });
  return [
    { label: "trellis via agent", bin: CNI_BIN, config: JSON.stringify(ours(serviceSocket(dir), 0)) },
    { label: "trellis standalone", bin: CNI_BIN, config: JSON.stringify(ours("", 1)) },
    { label: "bridge+host-local", bin: join(REFERENCE_DIR, "bridge"), config: JSON.stringify(reference(false, 0)) },
    {
      label: "bridge+host-local ipMasq",
      bin: join(REFERENCE_DIR, "bridge"),
      config: JSON.stringify(reference(true, 1)),
    },
  ];
}

function cniEnv(command: string, containerId: string, pod: string): NodeJS.ProcessEnv {
  // What a runtime passes: its own PATH and the CNI variables, nothing of this shell's environment.
  return {
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    CNI_COMMAND: command,
    CNI_CONTAINERID: containerId,
    CNI_NETNS: `/run/netns/${pod}`,
    CNI_IFNAME: "eth0",
    CNI_PATH: REFERENCE_DIR,
  };
}

function timeSync(file: string, args: string[], env: NodeJS.ProcessEnv, input: string): number {
  const start = process.hrtime.bigint();
  const result = spawnSync(file, args, { env, input, encoding: "utf8" });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.status !== 0)
    throw new Error(`${file} ${env.CNI_COMMAND ?? ""} failed: ${result.stdout} ${result.stderr}`);
  return ms;
}

function timeAsync(file: string, env: NodeJS.ProcessEnv, input: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, [], { env, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.on("error", reject);
    child.on("exit", (code) => {
      if (code === 0) resolve();
      else reject(new Error(`${file} ${env.CNI_COMMAND ?? ""} failed: ${out}`));
    });
    child.stdin.end(input);
  });
}

const serviceSocket = (dir: string): string => join(dir, "cni.sock");

/** The agent's CNI service in this (the node's) namespace, as `trellis-agent run` hosts it. */
async function startService(dir: string): Promise<ChildProcess> {
  const script = join(dirname(fileURLToPath(import.meta.url)), "cni-service.js");
  // The thread pool as the agent sizes it (agent/src/launcher.cts); an ES module would be too late to set it itself.
  const env = { ...process.env, UV_THREADPOOL_SIZE: String(threadPool.SERVICE_THREAD_POOL_SIZE) };
  const child = spawn(process.execPath, [script, serviceSocket(dir)], { stdio: ["ignore", "pipe", "inherit"], env });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once("data", () => {
      resolve();
    });
    child.once("exit", (code) => {
      reject(new Error(`the CNI service exited (${String(code)})`));
    });
  });
  return child;
}

const percentile = (values: number[], q: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
};
const fmt = (ms: number): string => ms.toFixed(1).padStart(7);

async function measure(setup: Setup): Promise<void> {
  const service = await startService(setup.dir);
  try {
    await measureWith(setup);
  } finally {
    service.kill("SIGTERM");
  }
}

async function measureWith(setup: Setup): Promise<void> {
  const list = plugins(setup.dir);
  const times = new Map<string, number[]>();
  const record = (key: string, ms: number): void => {
    times.set(key, [...(times.get(key) ?? []), ms]);
  };
  // Warm-up (page cache, first bridge creation), not recorded.
  for (const p of list) {
    timeSync(p.bin, [], cniEnv("ADD", "warm", setup.pod), p.config);
    timeSync(p.bin, [], cniEnv("DEL", "warm", setup.pod), p.config);
  }
  for (let i = 0; i < setup.pairs; i += 1) {
    record("node -e 0", timeSync(process.execPath, ["-e", "0"], cniEnv("VERSION", "-", setup.pod), ""));
    for (const p of list) {
      record(`${p.label} ADD`, timeSync(p.bin, [], cniEnv("ADD", `c${i}`, setup.pod), p.config));
      record(`${p.label} DEL`, timeSync(p.bin, [], cniEnv("DEL", `c${i}`, setup.pod), p.config));
    }
  }
  const p50 = (key: string): number => percentile(times.get(key) ?? [], 0.5);
  console.log(`\n${setup.pairs} sequential ADD+DEL pairs (ms, wall per invocation, interleaved)`);
  console.log(`${"".padEnd(34)}    p50     p99`);
  for (const [key, values] of times)
    console.log(`${key.padEnd(34)}${fmt(percentile(values, 0.5))} ${fmt(percentile(values, 0.99))}`);
  const [agent, standalone, ref, refMasq] = list.map((p) => p.label) as [string, string, string, string];
  const ratio = (a: string, b: string): string => (p50(a) / p50(b)).toFixed(2);
  console.log("\nratios (p50, ours / reference)");
  for (const ours of [agent, standalone]) {
    const goals = ours === agent ? ["   (goal <= 3.0)", "   (goal <= 1.0)"] : ["", ""];
    console.log(`  ADD  ${ours}/${ref}: ${ratio(`${ours} ADD`, `${ref} ADD`)}${goals[0] ?? ""}`);
    console.log(`  DEL  ${ours}/${ref}: ${ratio(`${ours} DEL`, `${ref} DEL`)}${goals[1] ?? ""}`);
    console.log(`  ADD  ${ours}/${refMasq}: ${ratio(`${ours} ADD`, `${refMasq} ADD`)}`);
    console.log(`  DEL  ${ours}/${refMasq}: ${ratio(`${ours} DEL`, `${refMasq} DEL`)}`);
  }
  // Via the agent no Node starts: the whole ADD (shim, socket, the work) is ours.
  const refAdd = p50(`${ref} ADD`);
  console.log(
    `our own work via the agent (the whole ADD p50): ${p50(`${agent} ADD`).toFixed(1)} ms; reference ADD p50 ${refAdd.toFixed(1)} ms → ratio ${(p50(`${agent} ADD`) / refAdd).toFixed(2)} (goal <= 1.0)`,
  );
  const ownWork = p50(`${standalone} ADD`) - p50("node -e 0");
  console.log(
    `our own work standalone (ADD p50 − node -e 0 p50): ${ownWork.toFixed(1)} ms → ratio ${(ownWork / refAdd).toFixed(2)}`,
  );

  console.log(
    `\n${setup.concurrent} concurrent ADDs, then ${setup.concurrent} concurrent DELs (ms, wall for the batch)`,
  );
  const batch: Record<string, number> = {};
  for (const p of list.slice(0, 3)) {
    for (const command of ["ADD", "DEL"]) {
      const start = process.hrtime.bigint();
      await Promise.all(setup.pods.map((pod, n) => timeAsync(p.bin, cniEnv(command, `b${n}`, pod), p.config)));
      batch[`${p.label} ${command}`] = Number(process.hrtime.bigint() - start) / 1e6;
      console.log(`  ${`${p.label} ${command}`.padEnd(32)}${fmt(batch[`${p.label} ${command}`] ?? NaN)}`);
    }
  }
  for (const ours of [agent, standalone]) {
    console.log(
      `  ratio ${ours}/${ref} ADD: ${((batch[`${ours} ADD`] ?? NaN) / (batch[`${ref} ADD`] ?? NaN)).toFixed(2)}, DEL: ${((batch[`${ours} DEL`] ?? NaN) / (batch[`${ref} DEL`] ?? NaN)).toFixed(2)}`,
    );
  }
}

async function outer(argv: string[]): Promise<void> {
  const option = (name: string, fallback: number): number => {
    const i = argv.indexOf(name);
    const value = i < 0 ? fallback : Number(argv[i + 1]);
    if (!Number.isInteger(value) || value < 1)
      throw new RangeError(`${name} must be a positive integer: ${String(argv[i + 1])}`);
    return value;
  };
  const namespaces = new NamespaceSet();
  const dir = await mkdtemp(join(tmpdir(), "trellis-bench-cni-"));
  try {
    const node = await namespaces.add();
    const pod = await namespaces.add();
    const concurrent = option("--concurrent", 50);
    const pods: string[] = [];
    for (let i = 0; i < concurrent; i += 1) pods.push(await namespaces.add());
    await writeFile(join(dir, "subnet0.env"), SUBNET_ENV);
    await writeFile(join(dir, "subnet1.env"), SUBNET_ENV.replace("172.30.5.1/24", "172.30.10.1/24"));
    const setup: Setup = { dir, pod, pods, pairs: option("--pairs", 100), concurrent };
    console.log(`node ${process.version}; plugins run inside namespace ${node}; reference from ${REFERENCE_DIR}`);
    const self = fileURLToPath(import.meta.url);
    const inner = spawnSync("ip", ["netns", "exec", node, process.execPath, self, "--inside", JSON.stringify(setup)], {
      stdio: "inherit",
    });
    if (inner.status !== 0) throw new Error(`the measurement failed (exit ${String(inner.status)})`);
  } finally {
    await namespaces.dispose();
    await rm(dir, { recursive: true, force: true });
  }
}

const args = process.argv.slice(2);
if (args[0] === "--inside") await measure(JSON.parse(args[1] ?? "{}") as Setup);
else await outer(args);
