// subnet.env: the file flannel writes for its CNI plugin, and which ours reads. Pure parse/format here; the
// agent writes it through a FileStore.
import { formatCidr, parseCidr, type Cidr } from "./ipv4.js";

export interface SubnetEnv {
  /** FLANNEL_NETWORK: the whole pod network. */
  readonly network: Cidr;
  /** FLANNEL_SUBNET: this node's gateway address with the subnet's prefix length (172.30.5.1/24). */
  readonly subnet: Cidr;
  /** FLANNEL_MTU */
  readonly mtu: number;
  /** FLANNEL_IPMASQ */
  readonly ipMasq: boolean;
}

export type SubnetEnvParse = { ok: true; value: SubnetEnv } | { ok: false; error: string };

export function formatSubnetEnv(env: SubnetEnv): string {
  return [
    `FLANNEL_NETWORK=${formatCidr(env.network)}`,
    `FLANNEL_SUBNET=${formatCidr(env.subnet)}`,
    `FLANNEL_MTU=${env.mtu}`,
    `FLANNEL_IPMASQ=${env.ipMasq}`,
    "",
  ].join("\n");
}

/** Parses the KEY=VALUE lines; names the first missing or malformed key. Unknown keys are ignored (as flannel). */
export function parseSubnetEnv(text: string): SubnetEnvParse {
  const values = new Map<string, string>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) return { ok: false, error: `line ${JSON.stringify(line.slice(0, 80))} is not KEY=VALUE` };
    values.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const network = parseCidr(values.get("FLANNEL_NETWORK") ?? "");
  if (network === undefined) return { ok: false, error: fieldError("FLANNEL_NETWORK", values, "an IPv4 CIDR") };
  const subnet = parseCidr(values.get("FLANNEL_SUBNET") ?? "");
  if (subnet === undefined) return { ok: false, error: fieldError("FLANNEL_SUBNET", values, "an IPv4 CIDR") };
  const mtuText = values.get("FLANNEL_MTU") ?? "";
  const mtu = Number(mtuText);
  if (!/^\d+$/.test(mtuText) || mtu < 68 || mtu > 65535) {
    return { ok: false, error: fieldError("FLANNEL_MTU", values, "an integer between 68 and 65535") };
  }
  const masq = values.get("FLANNEL_IPMASQ") ?? "false";
  if (masq !== "true" && masq !== "false")
    return { ok: false, error: fieldError("FLANNEL_IPMASQ", values, "true or false") };
  return { ok: true, value: { network, subnet, mtu, ipMasq: masq === "true" } };
}

function fieldError(key: string, values: Map<string, string>, allowed: string): string {
  const value = values.get(key);
  return value === undefined ? `${key} is missing` : `${key}=${JSON.stringify(value)} is not ${allowed}`;
}
