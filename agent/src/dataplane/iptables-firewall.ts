// The firewall port over iptables-restore (and ip6tables-restore for the IPv6 network): our own chains (nat and
// filter), jumped to from POSTROUTING and FORWARD.
import { runChecked, type CommandRunner } from "#lib/command.js";
import type { IpFamily } from "#lib/netlink/kernel.js";
import type { Firewall } from "./firewall.js";
import {
  fingerprint,
  IPT_FILTER_CHAIN,
  IPT_NAT_CHAIN,
  iptablesRestoreInput,
  masqueradeFamilies,
  ruleCounts,
  type MasqueradeInput,
} from "./masquerade-rules.js";

const JUMPS = [
  { table: "nat", hook: "POSTROUTING", chain: IPT_NAT_CHAIN },
  { table: "filter", hook: "FORWARD", chain: IPT_FILTER_CHAIN },
] as const;

/** The tools of one address family. */
function tools(family: IpFamily): { iptables: string; restore: string; save: string } {
  const prefix = family === 4 ? "iptables" : "ip6tables";
  return { iptables: prefix, restore: `${prefix}-restore`, save: `${prefix}-save` };
}

export class IptablesFirewall implements Firewall {
  readonly kind = "iptables";

  constructor(private readonly runner: CommandRunner) {}

  private jumpArgs(jump: (typeof JUMPS)[number]): string[] {
    return ["-w", "5", "-t", jump.table, "-j", jump.chain, "-m", "comment", "--comment", "trellis"];
  }

  async apply(input: MasqueradeInput): Promise<void> {
    for (const family of masqueradeFamilies(input)) {
      const { iptables, restore } = tools(family);
      await runChecked(this.runner, restore, ["-w", "5", "--noflush"], iptablesRestoreInput(input, family));
      for (const jump of JUMPS) {
        const exists = await this.runner.run(iptables, ["-C", jump.hook, ...this.jumpArgs(jump)]);
        if (exists.code !== 0) await runChecked(this.runner, iptables, ["-I", jump.hook, "1", ...this.jumpArgs(jump)]);
      }
    }
  }

  async check(input: MasqueradeInput): Promise<boolean> {
    for (const family of masqueradeFamilies(input)) {
      const counts = ruleCounts(input, family);
      for (const [jump, expected] of [
        [JUMPS[0], counts.postrouting],
        [JUMPS[1], counts.forward],
      ] as const) {
        const saved = await this.runner.run(tools(family).save, ["-t", jump.table]);
        if (saved.code !== 0) return false;
        const lines = saved.stdout.split("\n");
        const own = lines.filter((l) => l.startsWith(`-A ${jump.chain} `));
        if (own.length !== expected) return false;
        if (!lines.some((l) => l.startsWith(`-A ${jump.hook} `) && l.includes(`-j ${jump.chain}`))) return false;
        if (jump.chain === IPT_NAT_CHAIN && !(own[0] ?? "").includes(`trellis:${fingerprint(input, family)}`))
          return false;
      }
    }
    return true;
  }

  /** Removes our chains and jumps of both families; a host without ip6tables has none of the IPv6 ones. */
  async remove(): Promise<void> {
    const run = (file: string, args: string[]): Promise<{ code: number }> =>
      this.runner.run(file, args).catch(() => ({ code: 127 }));
    for (const family of [4, 6] as const) {
      const { iptables } = tools(family);
      for (const jump of JUMPS) {
        // Delete every copy of our jump, then our chain.
        while ((await run(iptables, ["-D", jump.hook, ...this.jumpArgs(jump)])).code === 0);
        await run(iptables, ["-w", "5", "-t", jump.table, "-F", jump.chain]);
        await run(iptables, ["-w", "5", "-t", jump.table, "-X", jump.chain]);
      }
    }
  }
}
