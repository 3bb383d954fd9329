// subnet.env: the file flannel writes for its CNI plugin, and which ours reads. Pure parse/format here; the
// agent writes it through a FileStore. A dual-stack node has both pairs of lines, an IPv6-only one only the IPv6
// pair (flannel's WriteSubnetFile).
import { formatCidr, parseCidr, type Cidr } from "./ipv4.js";
import { formatCidr6, parseCidr6, type Cidr6 } from "./ipv6.js";

export interface SubnetEnv {
  /** FLANNEL_NETWORK: the whole IPv4 pod network (absent on an IPv6-only network). */
  readonly network?: Cidr | undefined;
  /** FLANNEL_SUBNET: this node's gateway address with the subnet's prefix length (172.30.5.1/24). */
  readonly subnet?: Cidr | undefined;
  /** FLANNEL_IPV6_NETWORK */
  readonly ipv6Network?: Cidr6 | undefined;
  /** FLANNEL_IPV6_SUBNET: as FLANNEL_SUBNET, the first address of the node's IPv6 subnet (fd30:0:0:5::1/64). */
  readonly ipv6Subnet?: Cidr6 | undefined;
  /** FLANNEL_MTU */
  readonly mtu: number;
  /** FLANNEL_IPMASQ */
  readonly ipMasq: boolean;
}

export type SubnetEnvParse = { ok: true; value: SubnetEnv } | { ok: false; error: string };

/** flannel's order: the IPv4 pair, the IPv6 pair, MTU, IPMASQ. */
export function formatSubnetEnv(env: SubnetEnv): string {
  const lines: string[] = [];
  if (env.network !== undefined && env.subnet !== undefined)
    lines.push(`FLANNEL_NETWORK=${formatCidr(env.network)}`, `FLANNEL_SUBNET=${formatCidr(env.subnet)}`);
  if (env.ipv6Network !== undefined && env.ipv6Subnet !== undefined)
    lines.push(
      `FLANNEL_IPV6_NETWORK=${formatCidr6(env.ipv6Network)}`,
      `FLANNEL_IPV6_SUBNET=${formatCidr6(env.ipv6Subnet)}`,
    );
  lines.push(`FLANNEL_MTU=${env.mtu}`, `FLANNEL_IPMASQ=${env.ipMasq}`, "");
  return lines.join("\n");
}

/**
 * Parses the KEY=VALUE lines; names the first missing or malformed key. Each family's pair comes whole or not at
 * all, and at least one does. Unknown keys are ignored (as flannel).
 */
export function parseSubnetEnv(text: string): SubnetEnvParse {
  const values = new Map<string, string>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) return { ok: false, error: `line ${JSON.stringify(line.slice(0, 80))} is not KEY=VALUE` };
    values.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const v4 = pair(values, "FLANNEL_NETWORK", "FLANNEL_SUBNET", parseCidr, "an IPv4 CIDR");
  if (!v4.ok) return v4;
  const v6 = pair(values, "FLANNEL_IPV6_NETWORK", "FLANNEL_IPV6_SUBNET", parseCidr6, "an IPv6 CIDR");
  if (!v6.ok) return v6;
  if (v4.value === undefined && v6.value === undefined) return { ok: false, error: "FLANNEL_NETWORK is missing" };
  const mtuText = values.get("FLANNEL_MTU") ?? "";
  const mtu = Number(mtuText);
  if (!/^\d+$/.test(mtuText) || mtu < 68 || mtu > 65535) {
    return { ok: false, error: fieldError("FLANNEL_MTU", values, "an integer between 68 and 65535") };
  }
  const masq = values.get("FLANNEL_IPMASQ") ?? "false";
  if (masq !== "true" && masq !== "false")
    return { ok: false, error: fieldError("FLANNEL_IPMASQ", values, "true or false") };
  return {
    ok: true,
    value: {
      ...(v4.value === undefined ? {} : { network: v4.value.network, subnet: v4.value.subnet }),
      ...(v6.value === undefined ? {} : { ipv6Network: v6.value.network, ipv6Subnet: v6.value.subnet }),
      mtu,
      ipMasq: masq === "true",
    },
  };
}

/** One family's NETWORK and SUBNET keys: both, or neither (undefined). */
function pair<T>(
  values: Map<string, string>,
  networkKey: string,
  subnetKey: string,
  parse: (text: string) => T | undefined,
  allowed: string,
): { ok: true; value: { network: T; subnet: T } | undefined } | { ok: false; error: string } {
  if (!values.has(networkKey) && !values.has(subnetKey)) return { ok: true, value: undefined };
  const network = parse(values.get(networkKey) ?? "");
  if (network === undefined) return { ok: false, error: fieldError(networkKey, values, allowed) };
  const subnet = parse(values.get(subnetKey) ?? "");
  if (subnet === undefined) return { ok: false, error: fieldError(subnetKey, values, allowed) };
  return { ok: true, value: { network, subnet } };
}

function fieldError(key: string, values: Map<string, string>, allowed: string): string {
  const value = values.get(key);
  return value === undefined ? `${key} is missing` : `${key}=${JSON.stringify(value)} is not ${allowed}`;
}
