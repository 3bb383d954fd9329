// The node's lease from subnet.env, as the agent wrote it, checked for what the plugin relies on: an IPv4 subnet,
// an IPv6 one, or both (dual-stack), each with its gateway (the subnet's first usable address, on the bridge) and the
// whole pod network of its family.
import { canonical, containsCidr, formatCidr, formatIpv4, type Cidr } from "#lib/ipv4.js";
import { canonical6, containsCidr6, formatCidr6, formatIpv6, type Cidr6 } from "#lib/ipv6.js";
import { parseSubnetEnv } from "#lib/subnet-env.js";
import { CniCode, CniError } from "./cni-error.js";
import type { PluginDeps } from "./deps.js";
import { isAssignable, isAssignable6, type Lease, type Lease6 } from "./ipam/choose.js";

export interface NodeLease {
  /** FLANNEL_NETWORK / FLANNEL_SUBNET; absent on an IPv6-only network. */
  ipv4?: Lease & { network: Cidr };
  /** FLANNEL_IPV6_NETWORK / FLANNEL_IPV6_SUBNET; absent on an IPv4-only network. */
  ipv6?: Lease6 & { network: Cidr6 };
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
  const { network, subnet, ipv6Network, ipv6Subnet, mtu } = parsed.value;
  const lease: NodeLease = { mtu };
  if (network !== undefined && subnet !== undefined) lease.ipv4 = ipv4Lease(path, network, subnet);
  if (ipv6Network !== undefined && ipv6Subnet !== undefined) lease.ipv6 = ipv6Lease(path, ipv6Network, ipv6Subnet);
  return lease;
}

function ipv4Lease(path: string, network: Cidr, gatewayCidr: Cidr): NonNullable<NodeLease["ipv4"]> {
  const subnet = canonical(gatewayCidr);
  if (!containsCidr(network, subnet)) {
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
  return { network: canonical(network), subnet, gateway: gatewayCidr.ip };
}

function ipv6Lease(path: string, network: Cidr6, gatewayCidr: Cidr6): NonNullable<NodeLease["ipv6"]> {
  const subnet = canonical6(gatewayCidr);
  if (!containsCidr6(network, subnet)) {
    throw new CniError(
      CniCode.SUBNET_ENV_INVALID,
      `${path} is malformed: FLANNEL_IPV6_SUBNET ${formatCidr6(gatewayCidr)} is outside FLANNEL_IPV6_NETWORK ${formatCidr6(network)}`,
    );
  }
  if (subnet.prefixLen > 126 || !isAssignable6({ subnet, gateway: -1n }, gatewayCidr.ip)) {
    throw new CniError(
      CniCode.SUBNET_ENV_INVALID,
      `${path} is malformed: FLANNEL_IPV6_SUBNET ${formatCidr6(gatewayCidr)} must be the gateway ${formatIpv6(subnet.ip + 1n)}/${subnet.prefixLen}-style address of a /126 or larger subnet`,
    );
  }
  return { network: canonical6(network), subnet, gateway: gatewayCidr.ip };
}
