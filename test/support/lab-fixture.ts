// A lab per test file under a prefix unique to this test process, removed in after() — and, should the process
// die first, by a synchronous exit hook.
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Lab, type UpOptions } from "../../lab/src/lab.js";
import { LabLayout } from "../../lab/src/layout.js";

let counter = 0;

export function useLab(options: UpOptions): { readonly lab: Lab } {
  let lab: Lab | undefined;
  const onExit = (): void => {
    lab?.downSync();
  };
  before(async function () {
    this.timeout(120_000);
    counter += 1;
    const prefix = `e${process.pid.toString(36).slice(-4)}${counter}`;
    lab = new Lab(new LabLayout(prefix, await mkdtemp(join(tmpdir(), `trellis-lab-${prefix}-`))));
    process.once("exit", onExit);
    try {
      // The cluster DNS only where a test asks for it: the other suites measure the overlay and the proxy alone.
      await lab.up({ dns: false, ...options });
    } catch (error) {
      // The lab is removed in after(): show what the agents said first.
      for (const node of lab.current.nodes) {
        const log = await lab.agentLog(node.index).catch(() => "(no log)");
        process.stderr.write(
          `--- agent log of n${node.index} (last lines)\n${log.split("\n").slice(-25).join("\n")}\n`,
        );
      }
      throw error;
    }
  });
  after(async function () {
    this.timeout(60_000);
    process.removeListener("exit", onExit);
    await lab?.down();
  });
  return {
    get lab(): Lab {
      if (lab === undefined) throw new Error("lab not up");
      return lab;
    },
  };
}
