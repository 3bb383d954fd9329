// The real adapters of the plugin's ports. The netlink adapter is imported on first use only: VERSION, STATUS and
// every error found before the kernel is needed never load it (~30 ms per process, docs/decisions/0005).
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import type { Kernel } from "../../lib/src/netlink/kernel.js";
import { CniCode, CniError } from "./cni-error.js";
import type { PluginDeps } from "./deps.js";
import { FileReservationStore } from "./ipam/file-store.js";

/** How long an operation waits for the IPAM lock before answering "try again later" (code 11). */
export const LOCK_TIMEOUT_MS = 10_000;

async function openKernel(netns?: string): Promise<Kernel> {
  const adapter = await import("../../lib/src/netlink/rtnetlink-kernel.js");
  return adapter.openKernel(netns === undefined ? {} : { netns });
}

export const realDeps: PluginDeps = {
  hostKernel: () => openKernel(),
  podKernel: async (netns) => {
    try {
      return await openKernel(netns);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === "NOT_FOUND")
        throw new CniError(CniCode.UNKNOWN_CONTAINER, `CNI_NETNS ${JSON.stringify(netns)} does not exist`, "", {
          cause: error,
        });
      if (code === "INVALID_ARGUMENT" || code === "IO") {
        throw new CniError(CniCode.INVALID_ENV, `CNI_NETNS ${JSON.stringify(netns)} is not a network namespace`, "", {
          cause: error,
        });
      }
      throw error;
    }
  },
  store: (dataDir) =>
    new FileReservationStore(dataDir, { timeoutMs: LOCK_TIMEOUT_MS, sleep: (ms) => sleep(ms), now: () => Date.now() }),
  readFile: (path) => {
    try {
      return readFileSync(path, "utf8");
    } catch (error) {
      if ((error as { code?: unknown }).code === "ENOENT") return undefined;
      throw error;
    }
  },
};
