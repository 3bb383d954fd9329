// A lab for a benchmark: its own prefix and temp state dir, always removed (also if the process dies).
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Lab, type UpOptions } from "../../lab/src/lab.js";
import { LabLayout } from "../../lab/src/layout.js";
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
