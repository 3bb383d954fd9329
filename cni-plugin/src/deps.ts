// The plugin's side effects, as ports. runPlugin() gets them injected: main.ts passes the real adapters
// (real-deps.ts, which loads netlink only when a kernel is asked for), tests pass fakes.
import type { Kernel } from "../../lib/src/netlink/kernel.js";
import type { ReservationStore } from "./ipam/store.js";

export interface PluginDeps {
  /** The kernel of the namespace the plugin runs in (the node's). */
  hostKernel(): Promise<Kernel>;
  /**
   * The kernel inside the pod's namespace. Fails with a CniError naming CNI_NETNS: code 3 when the path does not
   * exist, 4 when it is not a network namespace.
   */
  podKernel(netns: string): Promise<Kernel>;
  /** The IPAM store in `dataDir`. */
  store(dataDir: string): ReservationStore;
  /** A small text file (subnet.env); undefined when it does not exist. Other failures throw. */
  readFile(path: string): string | undefined;
}
