// The masquerade and forward rules, equivalent to flannel's, rendered for nftables (one table of our own, replaced
// in one transaction) and for iptables-restore (chains of our own). Pure.
import { createHash } from "node:crypto";
import { formatCidr, type Cidr } from "../../../lib/src/ipv4.js";

export const NFT_TABLE = "trellis";
export const IPT_NAT_CHAIN = "TRELLIS-POSTRTG";
export const IPT_FILTER_CHAIN = "TRELLIS-FWD";
/** kube-proxy marks packets it will masquerade itself. */
export const KUBE_PROXY_MASQ_MARK = 0x4000;

export interface MasqueradeInput {
  readonly network: Cidr;
  readonly ownSubnet: Cidr;
}

/** One rule in a neutral form, rendered for either backend. */
interface Rule {
  readonly chain: "postrouting" | "forward";
  readonly nft: string;
  readonly ipt: string;
  readonly why: string;
}

function rules({ network, ownSubnet }: MasqueradeInput): Rule[] {
  const net = formatCidr(network);
  const own = formatCidr(ownSubnet);
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
      nft: `ip saddr ${own} ip daddr ${net} return`,
      ipt: `-s ${own} -d ${net} -j RETURN`,
      why: "pod to pod: no NAT",
    },
    {
      chain: "postrouting",
      nft: `ip saddr ${net} ip daddr ${own} return`,
      ipt: `-s ${net} -d ${own} -j RETURN`,
      why: "pod to pod: no NAT",
    },
    {
      chain: "postrouting",
      nft: `ip saddr != ${net} ip daddr ${own} return`,
      ipt: `! -s ${net} -d ${own} -j RETURN`,
      why: "node to its own pods: no NAT",
    },
    {
      chain: "postrouting",
      nft: `ip saddr ${net} ip daddr != 224.0.0.0/4 masquerade fully-random`,
      ipt: `-s ${net} ! -d 224.0.0.0/4 -j MASQUERADE --random-fully`,
      why: "pods to outside",
    },
    {
      chain: "postrouting",
      nft: `ip saddr != ${net} ip daddr ${net} masquerade fully-random`,
      ipt: `! -s ${net} -d ${net} -j MASQUERADE --random-fully`,
      why: "node to other nodes' pods",
    },
    { chain: "forward", nft: `ip saddr ${net} accept`, ipt: `-s ${net} -j ACCEPT`, why: "forward pod traffic" },
    { chain: "forward", nft: `ip daddr ${net} accept`, ipt: `-d ${net} -j ACCEPT`, why: "forward pod traffic" },
  ];
}

/** Identifies a rule set: stored in the first rule's comment, so a check can tell ours-and-current from stale. */
export function fingerprint(input: MasqueradeInput): string {
  const text = rules(input)
    .map((r) => `${r.chain} ${r.nft}`)
    .join("\n");
  return createHash("sha256").update(text).digest("hex").slice(0, 12);
}

export function ruleCounts(input: MasqueradeInput): { postrouting: number; forward: number } {
  const all = rules(input);
  return {
    postrouting: all.filter((r) => r.chain === "postrouting").length,
    forward: all.filter((r) => r.chain === "forward").length,
  };
}

function comment(rule: Rule, index: number, fp: string): string {
  return index === 0 ? `trellis:${fp} ${rule.why}` : `trellis: ${rule.why}`;
}

/**
 * An nft script that replaces our table in one transaction: "add" makes the delete valid on a first run, the
 * delete and re-create happen atomically, so there is never a moment without rules.
 */
export function nftScript(input: MasqueradeInput): string {
  const fp = fingerprint(input);
  const all = rules(input);
  const chain = (name: "postrouting" | "forward", header: string): string[] => [
    `  chain ${name} {`,
    `    ${header}`,
    ...all.filter((r) => r.chain === name).map((r) => `    ${r.nft} comment "${comment(r, all.indexOf(r), fp)}"`),
    "  }",
  ];
  return [
    `table ip ${NFT_TABLE}`,
    `delete table ip ${NFT_TABLE}`,
    `table ip ${NFT_TABLE} {`,
    ...chain("postrouting", "type nat hook postrouting priority srcnat; policy accept;"),
    ...chain("forward", "type filter hook forward priority filter; policy accept;"),
    "}",
    "",
  ].join("\n");
}

/** iptables-restore input (with --noflush): declaring our chains flushes them, so each table is replaced atomically. */
export function iptablesRestoreInput(input: MasqueradeInput): string {
  const fp = fingerprint(input);
  const all = rules(input);
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
