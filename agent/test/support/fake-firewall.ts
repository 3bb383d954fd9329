// The Firewall port in memory: the rules installed (by their input: check is true only for exactly these), how often
// they were applied, and an apply that fails while failApply is set (a broken nft).
import { TrellisError } from "#lib/errors.js";
import { formatCidr } from "#lib/ipv4.js";
import { formatCidr6 } from "#lib/ipv6.js";
import type { Firewall } from "../../src/dataplane/firewall.js";
import type { MasqueradeInput } from "../../src/dataplane/masquerade-rules.js";

/** "network ownSubnet" of each family, IPv4 first, joined by " | ". */
const describe = ({ ipv4, ipv6 }: MasqueradeInput): string =>
  [
    ...(ipv4 === undefined ? [] : [`${formatCidr(ipv4.network)} ${formatCidr(ipv4.ownSubnet)}`]),
    ...(ipv6 === undefined ? [] : [`${formatCidr6(ipv6.network)} ${formatCidr6(ipv6.ownSubnet)}`]),
  ].join(" | ");

export class FakeFirewall implements Firewall {
  readonly kind = "nftables";
  /** "network ownSubnet" of the rules in place (each family's, " | " between them), or undefined. */
  rules: string | undefined;
  applies = 0;
  checks = 0;
  failApply: string | undefined;

  get installed(): boolean {
    return this.rules !== undefined;
  }

  apply(input: MasqueradeInput): Promise<void> {
    this.applies += 1;
    if (this.failApply !== undefined) return Promise.reject(new TrellisError("COMMAND_FAILED", this.failApply));
    this.rules = describe(input);
    return Promise.resolve();
  }

  check(input: MasqueradeInput): Promise<boolean> {
    this.checks += 1;
    return Promise.resolve(this.rules === describe(input));
  }

  remove(): Promise<void> {
    this.rules = undefined;
    return Promise.resolve();
  }
}
