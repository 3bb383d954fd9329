// The plugin's side effects, as ports. runPlugin() gets them injected: main.ts passes the real adapters
// (real-deps.ts, which loads netlink only when a kernel is asked for), tests pass fakes.
import type { Kernel } from "#lib/netlink/kernel.js";
import type { ReservationStore } from "./ipam/store.js";
import type { PodRecordStore } from "./pod-records.js";

export interface PluginDeps {
  /** The kernel of the namespace the plugin runs in (the node's). */
  hostKernel(): Promise<Kernel>;
  /**
   * The kernel inside the pod's namespace, CNI_NETNS as the runtime named it. `openAt` is where this process reaches
   * that namespace when not by that path: the agent's CNI service opens the descriptor its caller passed
   * (/proc/self/fd/N). Fails with a CniError naming CNI_NETNS: code 3 when it does not exist, 4 when it is not a
   * network namespace.
   */
  podKernel(netns: string, openAt?: string): Promise<Kernel>;
  /**
   * The network namespaces a pod may never be wired into, as readlink(/proc/PID/ns/net) shows them: the caller's
   * own and this process's (the node's; in the agent's CNI service also the agent's).
   */
  callerNamespaces(): readonly string[];
  /** The network's pod records in `dir` (config podRecordDir), read by the node's agent. */
  podRecords(dir: string, network: string): PodRecordStore;
  /** The IPAM store in `dataDir`. */
  store(dataDir: string): ReservationStore;
  /** A small text file (subnet.env); undefined when it does not exist. Other failures throw. */
  readFile(path: string): string | undefined;
}
