// ADD and CHECK work inside the pod's namespace; DEL, GC and STATUS never need it.
import type { Kernel } from "../../../lib/src/netlink/kernel.js";
import { CniCode, CniError } from "../cni-error.js";
import type { PluginDeps } from "../deps.js";
import type { Invocation } from "../env.js";

export function requireNetns(invocation: Invocation): string {
  if (invocation.netns === undefined) throw new CniError(CniCode.INVALID_ENV, `${invocation.command} needs CNI_NETNS`);
  return invocation.netns;
}

/** Runs fn with a kernel handle inside the pod's namespace and one in the node's; both are closed afterwards. */
export async function withPodAndHost<T>(
  deps: PluginDeps,
  netns: string,
  fn: (pod: Kernel, host: Kernel) => Promise<T>,
): Promise<T> {
  const pod = await deps.podKernel(netns);
  try {
    const host = await deps.hostKernel();
    try {
      return await fn(pod, host);
    } finally {
      host.close();
    }
  } finally {
    pod.close();
  }
}
