// ADD and CHECK work inside the pod's namespace; DEL looks there when it can (to prove a host veth ours); GC and
// STATUS never need it.
import type { Kernel } from "#lib/netlink/kernel.js";
import { CniCode, CniError } from "../cni-error.js";
import type { PluginDeps } from "../deps.js";
import type { Invocation } from "../env.js";

export function requireNetns(invocation: Invocation): string {
  if (invocation.netns === undefined) throw new CniError(CniCode.INVALID_ENV, `${invocation.command} needs CNI_NETNS`);
  return invocation.netns;
}

/** A pod's namespace must be its own: never the caller's or ours (a runtime bug, or a path to the host's). */
export function refuseCallerNamespace(deps: PluginDeps, pod: Kernel, netns: string): void {
  if (deps.callerNamespaces().includes(pod.netnsId)) {
    throw new CniError(
      CniCode.INVALID_ENV,
      `CNI_NETNS ${JSON.stringify(netns)} is the caller's own network namespace (${pod.netnsId}), not a pod's: refusing to wire it`,
    );
  }
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

/** The pod's kernel when CNI_NETNS is given and still opens; DEL is best effort and goes on without it. */
export async function optionalPodKernel(deps: PluginDeps, netns: string | undefined): Promise<Kernel | undefined> {
  if (netns === undefined) return undefined;
  try {
    return await deps.podKernel(netns);
  } catch {
    return undefined;
  }
}
