// The firewall port over nftables: our own table per address family (`ip trellis`, `ip6 trellis`), replaced in one
// `nft -f -` transaction.
import { runChecked, type CommandRunner } from "#lib/command.js";
import { TrellisError } from "#lib/errors.js";
import type { IpFamily } from "#lib/netlink/kernel.js";
import type { Firewall } from "./firewall.js";
import {
  fingerprint,
  masqueradeFamilies,
  NFT_TABLE,
  nftFamily,
  nftScript,
  ruleCounts,
  type MasqueradeInput,
} from "./masquerade-rules.js";

interface NftRule {
  rule?: { chain?: string; comment?: string };
}

export class NftFirewall implements Firewall {
  readonly kind = "nftables";

  constructor(private readonly runner: CommandRunner) {}

  async apply(input: MasqueradeInput): Promise<void> {
    await runChecked(this.runner, "nft", ["-f", "-"], nftScript(input));
  }

  async check(input: MasqueradeInput): Promise<boolean> {
    for (const family of masqueradeFamilies(input)) if (!(await this.checkTable(input, family))) return false;
    return true;
  }

  private async checkTable(input: MasqueradeInput, family: IpFamily): Promise<boolean> {
    const result = await this.runner.run("nft", ["-j", "list", "table", nftFamily(family), NFT_TABLE]);
    if (result.code !== 0) return false;
    let items: NftRule[];
    try {
      items = (JSON.parse(result.stdout) as { nftables: NftRule[] }).nftables;
    } catch {
      return false;
    }
    const rules = items.flatMap((item) => (item.rule === undefined ? [] : [item.rule]));
    const counts = ruleCounts(input, family);
    const post = rules.filter((r) => r.chain === "postrouting");
    return (
      post.length === counts.postrouting &&
      rules.filter((r) => r.chain === "forward").length === counts.forward &&
      (post[0]?.comment ?? "").startsWith(`trellis:${fingerprint(input, family)}`)
    );
  }

  /** Removes both families' tables (absent is fine). */
  async remove(): Promise<void> {
    for (const family of ["ip", "ip6"]) {
      const result = await this.runner.run("nft", ["delete", "table", family, NFT_TABLE]);
      if (result.code !== 0 && !/No such file|does not exist/i.test(result.stderr)) {
        throw new TrellisError(
          "COMMAND_FAILED",
          `nft delete table ${family} ${NFT_TABLE} failed: ${result.stderr.trim()}`,
        );
      }
    }
  }
}
