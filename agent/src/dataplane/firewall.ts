// The firewall port: our masquerade + forward rules, replaced atomically, checked, removed. Its adapters run the
// host's tools: nft-firewall.ts (our own table, preferred), iptables-firewall.ts (our own chains, when nft is
// absent); choose-firewall.ts picks one.
import type { MasqueradeInput } from "./masquerade-rules.js";

export interface Firewall {
  readonly kind: "nftables" | "iptables";
  /** Replaces our rules with these, atomically. */
  apply(input: MasqueradeInput): Promise<void>;
  /** True when exactly these rules (by fingerprint and count) are installed. */
  check(input: MasqueradeInput): Promise<boolean>;
  /** Removes everything of ours; absent is fine. */
  remove(): Promise<void>;
}

export type FirewallBackend = "auto" | "nftables" | "iptables";
