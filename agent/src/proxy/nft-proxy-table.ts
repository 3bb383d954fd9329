// The proxy's side effects, behind two small ports with one adapter each: the nftables table (read back, replaced
// by a transaction through `nft -f -`, removed by `cleanup`) and conntrack (deleting UDP flows to backends that went
// away). Argument arrays and stdin only.
import type { CommandRunner } from "#lib/command.js";
import { TrellisError } from "#lib/errors.js";
import { formatIpv4 } from "#lib/ipv4.js";
import type { TableContents } from "./proxy-plan.js";
import { TABLE } from "./service-rules.js";

export interface ProxyTable {
  /** The chains and sets the table holds, or undefined when there is no table. */
  read(): Promise<TableContents | undefined>;
  /** Runs one transaction: all of it, or (on an error) nothing. */
  apply(script: string): Promise<void>;
  /** Removes the table; absent is fine. */
  remove(): Promise<void>;
}

export interface Conntrack {
  /** Deletes UDP flows to clusterIp:port (answered by `replySource` when given). */
  deleteUdp(clusterIp: number, port: number, replySource?: number): Promise<void>;
}

interface NftItem {
  chain?: { name?: string };
  set?: { name?: string };
  map?: { name?: string };
}

export class NftProxyTable implements ProxyTable {
  constructor(private readonly runner: CommandRunner) {}

  async read(): Promise<TableContents | undefined> {
    const result = await this.runner.run("nft", ["-j", "list", "table", "ip", TABLE]);
    if (result.code !== 0) return undefined;
    const items = (JSON.parse(result.stdout) as { nftables: NftItem[] }).nftables;
    const chains = new Set<string>();
    const sets = new Set<string>();
    for (const item of items) {
      if (item.chain?.name !== undefined) chains.add(item.chain.name);
      if (item.set?.name !== undefined) sets.add(item.set.name);
    }
    return { chains, sets };
  }

  async apply(script: string): Promise<void> {
    const result = await this.runner.run("nft", ["-f", "-"], script);
    if (result.code !== 0)
      throw new TrellisError(
        "COMMAND_FAILED",
        `nft -f - (the service rules) failed: ${result.stderr.trim().split("\n").slice(0, 3).join(" | ") || `exit ${result.code}`}`,
      );
  }

  async remove(): Promise<void> {
    const result = await this.runner.run("nft", ["delete", "table", "ip", TABLE]);
    if (result.code !== 0 && !/No such file|does not exist/i.test(result.stderr)) {
      throw new TrellisError("COMMAND_FAILED", `nft delete table ip ${TABLE} failed: ${result.stderr.trim()}`);
    }
  }
}

export class ConntrackTool implements Conntrack {
  constructor(private readonly runner: CommandRunner) {}

  async deleteUdp(clusterIp: number, port: number, replySource?: number): Promise<void> {
    const args = ["-D", "-p", "udp", "--orig-dst", formatIpv4(clusterIp), "--orig-port-dst", String(port)];
    if (replySource !== undefined) args.push("--reply-src", formatIpv4(replySource));
    const result = await this.runner.run("conntrack", args);
    // Exit 1 with "0 flow entries have been deleted" is the common, fine case.
    if (result.code !== 0 && !/0 flow entries/.test(result.stderr))
      throw new TrellisError("COMMAND_FAILED", `conntrack ${args.join(" ")} failed: ${result.stderr.trim()}`);
  }
}
