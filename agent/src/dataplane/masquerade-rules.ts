// The masquerade and forward rules, equivalent to flannel's, rendered for nftables (one table of our own per address
// family, `ip trellis` and `ip6 trellis`, replaced in one transaction) and for iptables-restore / ip6tables-restore
// (chains of our own). Pure.
import { createHash } from "node:crypto";
import { formatCidr, type Cidr } from "#lib/ipv4.js";
import { formatCidr6, type Cidr6 } from "#lib/ipv6.js";
import type { IpFamily } from "#lib/netlink/kernel.js";

export const NFT_TABLE = "trellis";
export const IPT_NAT_CHAIN = "TRELLIS-POSTRTG";
export const IPT_FILTER_CHAIN = "TRELLIS-FWD";
/** kube-proxy marks packets it will masquerade itself. */
export const KUBE_PROXY_MASQ_MARK = 0x4000;

/** One family's pod network and this node's subnet in it. */
export interface FamilyMasquerade<C> {
  readonly network: C;
  readonly ownSubnet: C;
}

/** The rules of each family the network has: IPv4 unless it is IPv6-only, IPv6 when it has an IPv6 network. */
export interface MasqueradeInput {
  readonly ipv4?: FamilyMasquerade<Cidr> | undefined;
  readonly ipv6?: FamilyMasquerade<Cidr6> | undefined;
}

/** The families an input has rules for, IPv4 first. */
export function masqueradeFamilies(input: MasqueradeInput): IpFamily[] {
  return [...(input.ipv4 === undefined ? [] : [4 as const]), ...(input.ipv6 === undefined ? [] : [6 as const])];
}

/** The nft family of our table for an address family. */
export function nftFamily(family: IpFamily): "ip" | "ip6" {
  return family === 4 ? "ip" : "ip6";
}

/** One rule in a neutral form, rendered for either backend. */
interface Rule {
  readonly chain: "postrouting" | "forward";
  readonly nft: string;
  readonly ipt: string;
  readonly why: string;
}

/** Net and own subnet as text, and the family's multicast range, or undefined when the input has no such family. */
function familyText(
  input: MasqueradeInput,
  family: IpFamily,
): { net: string; own: string; multicast: string } | undefined {
  if (family === 4)
    return input.ipv4 === undefined
      ? undefined
      : { net: formatCidr(input.ipv4.network), own: formatCidr(input.ipv4.ownSubnet), multicast: "224.0.0.0/4" };
  return input.ipv6 === undefined
    ? undefined
    : { net: formatCidr6(input.ipv6.network), own: formatCidr6(input.ipv6.ownSubnet), multicast: "ff00::/8" };
}

function rules(input: MasqueradeInput, family: IpFamily): Rule[] {
  const text = familyText(input, family);
  if (text === undefined) return [];
  const { net, own, multicast } = text;
  const ip = nftFamily(family);
  const mark = `0x${KUBE_PROXY_MASQ_MARK.toString(16).padStart(8, "0")}`;
  return [
    {
      chain: "postrouting",
      nft: `meta mark & ${mark} == ${mark} return`,
      ipt: `-m mark --mark ${mark}/${mark} -j RETURN`,
      why: "kube-proxy masquerades it",
    },
    {
      chain: "postrouting",
      nft: `${ip} saddr ${own} ${ip} daddr ${net} return`,
      ipt: `-s ${own} -d ${net} -j RETURN`,
      why: "pod to pod: no NAT",
    },
    {
      chain: "postrouting",
      nft: `${ip} saddr ${net} ${ip} daddr ${own} return`,
      ipt: `-s ${net} -d ${own} -j RETURN`,
      why: "pod to pod: no NAT",
    },
    {
      chain: "postrouting",
      nft: `${ip} saddr != ${net} ${ip} daddr ${own} return`,
      ipt: `! -s ${net} -d ${own} -j RETURN`,
      why: "node to its own pods: no NAT",
    },
    {
      chain: "postrouting",
      nft: `${ip} saddr ${net} ${ip} daddr != ${multicast} masquerade fully-random`,
      ipt: `-s ${net} ! -d ${multicast} -j MASQUERADE --random-fully`,
      why: "pods to outside",
    },
    {
      chain: "postrouting",
      nft: `${ip} saddr != ${net} ${ip} daddr ${net} masquerade fully-random`,
      ipt: `! -s ${net} -d ${net} -j MASQUERADE --random-fully`,
      why: "node to other nodes' pods",
    },
    { chain: "forward", nft: `${ip} saddr ${net} accept`, ipt: `-s ${net} -j ACCEPT`, why: "forward pod traffic" },
    { chain: "forward", nft: `${ip} daddr ${net} accept`, ipt: `-d ${net} -j ACCEPT`, why: "forward pod traffic" },
  ];
}

/**
 * Identifies one family's rule set: stored in its first rule's comment, so a check can tell ours-and-current from
 * stale.
 */
export function fingerprint(input: MasqueradeInput, family: IpFamily = 4): string {
  const text = rules(input, family)
    .map((r) => `${r.chain} ${r.nft}`)
    .join("\n");
  return createHash("sha256").update(text).digest("hex").slice(0, 12);
}

export function ruleCounts(input: MasqueradeInput, family: IpFamily = 4): { postrouting: number; forward: number } {
  const all = rules(input, family);
  return {
    postrouting: all.filter((r) => r.chain === "postrouting").length,
    forward: all.filter((r) => r.chain === "forward").length,
  };
}

function comment(rule: Rule, index: number, fp: string): string {
  return index === 0 ? `trellis:${fp} ${rule.why}` : `trellis: ${rule.why}`;
}

/**
 * An nft script that replaces our table of each family the input has, all in one transaction: "add" makes the
 * delete valid on a first run, the delete and re-create happen atomically, so there is never a moment without rules.
 * A family the input lacks is left alone.
 */
export function nftScript(input: MasqueradeInput): string {
  const lines: string[] = [];
  for (const family of masqueradeFamilies(input)) {
    const fp = fingerprint(input, family);
    const all = rules(input, family);
    const table = `${nftFamily(family)} ${NFT_TABLE}`;
    const chain = (name: "postrouting" | "forward", header: string): string[] => [
      `  chain ${name} {`,
      `    ${header}`,
      ...all.filter((r) => r.chain === name).map((r) => `    ${r.nft} comment "${comment(r, all.indexOf(r), fp)}"`),
      "  }",
    ];
    lines.push(
      `table ${table}`,
      `delete table ${table}`,
      `table ${table} {`,
      ...chain("postrouting", "type nat hook postrouting priority srcnat; policy accept;"),
      ...chain("forward", "type filter hook forward priority filter; policy accept;"),
      "}",
    );
  }
  return [...lines, ""].join("\n");
}

/**
 * iptables-restore (family 4) or ip6tables-restore (6) input, with --noflush: declaring our chains flushes them, so
 * each table is replaced atomically.
 */
export function iptablesRestoreInput(input: MasqueradeInput, family: IpFamily = 4): string {
  const fp = fingerprint(input, family);
  const all = rules(input, family);
  const lines = (chain: string, which: Rule["chain"]): string[] =>
    all
      .filter((r) => r.chain === which)
      .map((r) => `-A ${chain} ${r.ipt} -m comment --comment "${comment(r, all.indexOf(r), fp)}"`);
  return [
    "*nat",
    `:${IPT_NAT_CHAIN} - [0:0]`,
    ...lines(IPT_NAT_CHAIN, "postrouting"),
    "COMMIT",
    "*filter",
    `:${IPT_FILTER_CHAIN} - [0:0]`,
    ...lines(IPT_FILTER_CHAIN, "forward"),
    "COMMIT",
    "",
  ].join("\n");
}
