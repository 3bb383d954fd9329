// ADD and CHECK work inside the pod's namespace; DEL, GC and STATUS never need it.
import { CniCode, CniError } from "../cni-error.js";
import type { Invocation } from "../env.js";

export function requireNetns(invocation: Invocation): string {
  if (invocation.netns === undefined) throw new CniError(CniCode.INVALID_ENV, `${invocation.command} needs CNI_NETNS`);
  return invocation.netns;
}
