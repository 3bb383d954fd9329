// The real adapters of the plugin's ports. The netlink adapter is imported on first use only: VERSION, STATUS and
// every error found before the kernel is needed never load it (~30 ms per process, docs/decisions/0005).
import { readFileSync } from "node:fs";
import { constants } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import type { Kernel } from "#lib/netlink/kernel.js";
import { currentNetnsId } from "#lib/netlink/netns.js";
import { CniCode, CniError } from "./cni-error.js";
import type { PluginDeps } from "./deps.js";
import { FileReservationStore } from "./ipam/file-store.js";
import { DirectoryPodRecords } from "./pod-records.js";

/** How long an operation waits for the IPAM lock before answering "try again later" (code 11). */
export const LOCK_TIMEOUT_MS = 10_000;

async function openKernel(netns?: string): Promise<Kernel> {
  const adapter = await import("#lib/netlink/rtnetlink-kernel.js");
  return adapter.openKernel(netns === undefined ? {} : { netns });
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(constants.errno).map(([name, number]) => [number, name]));

/**
 * The answer for a CNI_NETNS that cannot be entered, from the failure's code (the adapter's, or an errno the
 * shim reports as a number): code 3 when it does not exist, 4 when it is not a network namespace.
 */
export function podNamespaceError(netns: string, failure: string | number | undefined, cause?: unknown): Error {
  const code = typeof failure === "number" ? ERRNO_NAMES.get(failure) : failure;
  const options = cause === undefined ? {} : { cause };
  if (code === "NOT_FOUND" || code === "ENOENT" || code === undefined)
    return new CniError(CniCode.UNKNOWN_CONTAINER, `CNI_NETNS ${JSON.stringify(netns)} does not exist`, "", options);
  if (code === "EACCES" || code === "EPERM" || code === "PERMISSION_DENIED")
    return new CniError(CniCode.IO_FAILURE, `opening CNI_NETNS ${JSON.stringify(netns)} was denied`, "", options);
  return new CniError(
    CniCode.INVALID_ENV,
    `CNI_NETNS ${JSON.stringify(netns)} is not a network namespace`,
    "",
    options,
  );
}

export const realDeps: PluginDeps = {
  hostKernel: () => openKernel(),
  podKernel: async (netns, openAt) => {
    try {
      return await openKernel(openAt ?? netns);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === "NOT_FOUND" || code === "INVALID_ARGUMENT" || code === "IO")
        throw podNamespaceError(netns, code, error);
      throw error;
    }
  },
  // Run by the runtime, this process is the caller: its own namespace is the one to refuse.
  callerNamespaces: () => [currentNetnsId()],
  podRecords: (dir, network) => new DirectoryPodRecords(dir, network),
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
