// A lab for a benchmark: its own prefix and temp state dir, always removed (also if the process dies); the probes
// that run beside its etcd; a process's RSS.
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runStatus } from "../../lab/src/exec.js";
import { Lab, type UpOptions } from "../../lab/src/lab.js";
import { LabLayout } from "../../lab/src/layout.js";
import { REPO_ROOT } from "../../lab/src/paths.js";
import type { PodState } from "../../lab/src/state.js";

export async function withLab<T>(
  prefix: string,
  options: UpOptions,
  fn: (lab: Lab) => Promise<T>,
  progress?: (line: string) => void,
): Promise<T> {
  const lab = new Lab(new LabLayout(prefix, await mkdtemp(join(tmpdir(), `trellis-bench-${prefix}-`))), progress);
  const onExit = (): void => {
    lab.downSync();
  };
  process.once("exit", onExit);
  try {
    await lab.up({ dns: false, ...options });
    return await fn(lab);
  } finally {
    process.removeListener("exit", onExit);
    await lab.down();
  }
}

/** The first pod on node a and on node b. */
export function podPair(lab: Lab, a = 1, b = 2): [PodState, PodState] {
  const from = lab.current.pods.find((p) => p.node === a);
  const to = lab.current.pods.find((p) => p.node === b);
  if (from === undefined || to === undefined) throw new Error(`no pods on n${a} and n${b}`);
  return [from, to];
}

/**
 * Runs a probe (dist/scripts/benchmarks/<name>.js) in the lab's underlay namespace, where etcd answers on
 * 127.0.0.1:2379, with its arguments as one JSON argument; it prints its figures as JSON.
 */
export async function runProbe<T>(lab: Lab, name: string, args: Record<string, unknown>): Promise<T> {
  const script = join(REPO_ROOT, `dist/scripts/benchmarks/${name}.js`);
  const result = await runStatus(
    "ip",
    [
      "netns",
      "exec",
      lab.layout.underlayNs,
      process.execPath,
      script,
      JSON.stringify({ endpoint: "http://127.0.0.1:2379", ...args }),
    ],
    { timeoutMs: 600_000 },
  );
  if (result.code !== 0) throw new Error(`${name} failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

export async function rssMiB(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(text)?.[1] ?? "0") / 1024;
}
