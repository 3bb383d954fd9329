// The firewall port (masquerade + forward rules) and its two adapters: nftables (our own table, preferred) and
// iptables-restore (our own chains, when nft is absent). Both replace the rule set atomically and can tell
// whether the current rules are present and unchanged.
import type { CommandRunner } from "../../../lib/src/command.js";
import { TrellisError } from "../../../lib/src/errors.js";
import {
  fingerprint,
  IPT_FILTER_CHAIN,
  IPT_NAT_CHAIN,
  iptablesRestoreInput,
  NFT_TABLE,
  nftScript,
  ruleCounts,
  type MasqueradeInput,
} from "./masquerade-rules.js";

export interface Firewall {
  readonly kind: "nftables" | "iptables";
  /** Replaces our rules with these, atomically. */
  apply(input: MasqueradeInput): Promise<void>;
  /** True when exactly these rules (by fingerprint and count) are installed. */
  check(input: MasqueradeInput): Promise<boolean>;
  /** Removes everything of ours; absent is fine. */
  remove(): Promise<void>;
}

async function must(runner: CommandRunner, file: string, args: readonly string[], input?: string): Promise<string> {
  const result = await runner.run(file, args, input);
  if (result.code !== 0)
    throw new TrellisError(
      "COMMAND_FAILED",
      `${file} ${args.join(" ")} failed: ${result.stderr.trim() || `exit ${result.code}`}`,
    );
  return result.stdout;
}

interface NftRule {
  rule?: { chain?: string; comment?: string };
}

export class NftFirewall implements Firewall {
  readonly kind = "nftables";

  constructor(private readonly runner: CommandRunner) {}

  async apply(input: MasqueradeInput): Promise<void> {
    await must(this.runner, "nft", ["-f", "-"], nftScript(input));
  }

  async check(input: MasqueradeInput): Promise<boolean> {
    const result = await this.runner.run("nft", ["-j", "list", "table", "ip", NFT_TABLE]);
    if (result.code !== 0) return false;
    let items: NftRule[];
    try {
      items = (JSON.parse(result.stdout) as { nftables: NftRule[] }).nftables;
    } catch {
      return false;
    }
    const rules = items.flatMap((item) => (item.rule === undefined ? [] : [item.rule]));
    const counts = ruleCounts(input);
    const post = rules.filter((r) => r.chain === "postrouting");
    return (
      post.length === counts.postrouting &&
      rules.filter((r) => r.chain === "forward").length === counts.forward &&
      (post[0]?.comment ?? "").startsWith(`trellis:${fingerprint(input)}`)
    );
  }

  async remove(): Promise<void> {
    const result = await this.runner.run("nft", ["delete", "table", "ip", NFT_TABLE]);
    if (result.code !== 0 && !/No such file|does not exist/i.test(result.stderr)) {
      throw new TrellisError("COMMAND_FAILED", `nft delete table ip ${NFT_TABLE} failed: ${result.stderr.trim()}`);
    }
  }
}

const JUMPS = [
  { table: "nat", hook: "POSTROUTING", chain: IPT_NAT_CHAIN },
  { table: "filter", hook: "FORWARD", chain: IPT_FILTER_CHAIN },
] as const;

export class IptablesFirewall implements Firewall {
  readonly kind = "iptables";

  constructor(private readonly runner: CommandRunner) {}

  private jumpArgs(jump: (typeof JUMPS)[number]): string[] {
    return ["-w", "5", "-t", jump.table, "-j", jump.chain, "-m", "comment", "--comment", "trellis"];
  }

  async apply(input: MasqueradeInput): Promise<void> {
    await must(this.runner, "iptables-restore", ["-w", "5", "--noflush"], iptablesRestoreInput(input));
    for (const jump of JUMPS) {
      const exists = await this.runner.run("iptables", ["-C", jump.hook, ...this.jumpArgs(jump)]);
      if (exists.code !== 0) await must(this.runner, "iptables", ["-I", jump.hook, "1", ...this.jumpArgs(jump)]);
    }
  }

  async check(input: MasqueradeInput): Promise<boolean> {
    const counts = ruleCounts(input);
    for (const [jump, expected] of [
      [JUMPS[0], counts.postrouting],
      [JUMPS[1], counts.forward],
    ] as const) {
      const saved = await this.runner.run("iptables-save", ["-t", jump.table]);
      if (saved.code !== 0) return false;
      const lines = saved.stdout.split("\n");
      const own = lines.filter((l) => l.startsWith(`-A ${jump.chain} `));
      if (own.length !== expected) return false;
      if (!lines.some((l) => l.startsWith(`-A ${jump.hook} `) && l.includes(`-j ${jump.chain}`))) return false;
      if (jump.chain === IPT_NAT_CHAIN && !(own[0] ?? "").includes(`trellis:${fingerprint(input)}`)) return false;
    }
    return true;
  }

  async remove(): Promise<void> {
    for (const jump of JUMPS) {
      // Delete every copy of our jump, then our chain.
      while ((await this.runner.run("iptables", ["-D", jump.hook, ...this.jumpArgs(jump)])).code === 0);
      await this.runner.run("iptables", ["-w", "5", "-t", jump.table, "-F", jump.chain]);
      await this.runner.run("iptables", ["-w", "5", "-t", jump.table, "-X", jump.chain]);
    }
  }
}

export type FirewallBackend = "auto" | "nftables" | "iptables";

async function works(runner: CommandRunner, tool: string): Promise<boolean> {
  return (await runner.run(tool, ["--version"]).catch(() => ({ code: 127 }))).code === 0;
}

/** Every backend whose tool is installed here, nftables first. */
export async function installedFirewalls(runner: CommandRunner): Promise<Firewall[]> {
  const found: Firewall[] = [];
  if (await works(runner, "nft")) found.push(new NftFirewall(runner));
  if (await works(runner, "iptables-restore")) found.push(new IptablesFirewall(runner));
  return found;
}

/** nftables when the nft tool works here, else iptables. */
export async function chooseFirewall(runner: CommandRunner, wanted: FirewallBackend): Promise<Firewall> {
  if (wanted === "iptables") return new IptablesFirewall(runner);
  if (wanted === "nftables") return new NftFirewall(runner);
  return (await installedFirewalls(runner))[0] ?? new IptablesFirewall(runner);
}
