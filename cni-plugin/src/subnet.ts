// The node's lease from subnet.env, as the agent wrote it, checked for what the plugin relies on.
import { canonical, containsCidr, formatCidr, formatIpv4, type Cidr } from "../../lib/src/ipv4.js";
import { parseSubnetEnv } from "../../lib/src/subnet-env.js";
import { CniCode, CniError } from "./cni-error.js";
import type { PluginDeps } from "./deps.js";
import { isAssignable, type Lease } from "./ipam/choose.js";

export interface NodeLease extends Lease {
  network: Cidr;
  mtu: number;
}

/** Missing: the agent has not written it yet (code 11, try again); unreadable: code 5; malformed: code 101. */
export function readLease(deps: Pick<PluginDeps, "readFile">, path: string): NodeLease {
  let text: string | undefined;
  try {
    text = deps.readFile(path);
  } catch (error) {
    if (error instanceof CniError) throw error;
    const code = (error as { code?: unknown }).code;
    throw new CniError(
      CniCode.IO_FAILURE,
      `cannot read ${path}: ${typeof code === "string" ? code : String(error)}`,
      "",
      { cause: error },
    );
  }
  if (text === undefined) {
    throw new CniError(
      CniCode.TRY_AGAIN_LATER,
      `${path} does not exist yet: the trellis agent has not leased a subnet for this node`,
    );
  }
  const parsed = parseSubnetEnv(text);
  if (!parsed.ok) throw new CniError(CniCode.SUBNET_ENV_INVALID, `${path} is malformed: ${parsed.error}`);
  const { network, subnet: gatewayCidr, mtu } = parsed.value;
  const subnet = canonical(gatewayCidr);
  const lease: NodeLease = { network: canonical(network), subnet, gateway: gatewayCidr.ip, mtu };
  if (!containsCidr(lease.network, subnet)) {
    throw new CniError(
      CniCode.SUBNET_ENV_INVALID,
      `${path} is malformed: FLANNEL_SUBNET ${formatCidr(gatewayCidr)} is outside FLANNEL_NETWORK ${formatCidr(network)}`,
    );
  }
  if (subnet.prefixLen > 30 || !isAssignable({ subnet, gateway: -1 }, gatewayCidr.ip)) {
    throw new CniError(
      CniCode.SUBNET_ENV_INVALID,
      `${path} is malformed: FLANNEL_SUBNET ${formatCidr(gatewayCidr)} must be the gateway ${formatIpv4(subnet.ip + 1)}/${subnet.prefixLen}-style address of a /30 or larger subnet`,
    );
  }
  return lease;
}
