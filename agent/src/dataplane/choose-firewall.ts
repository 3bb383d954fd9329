// Which firewall adapter this host can run: nftables when its tool works, else iptables.
import type { CommandRunner } from "#lib/command.js";
import type { Firewall, FirewallBackend } from "./firewall.js";
import { IptablesFirewall } from "./iptables-firewall.js";
import { NftFirewall } from "./nft-firewall.js";

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
