// The firewall adapters against the real nft and iptables tools, inside a throwaway namespace.
import assert from "node:assert/strict";
import { processRunner, type CommandRunner } from "#lib/command.js";
import { parseCidr } from "#lib/ipv4.js";
import { parseCidr6 } from "#lib/ipv6.js";
import type { Firewall } from "../src/dataplane/firewall.js";
import { IptablesFirewall } from "../src/dataplane/iptables-firewall.js";
import { NftFirewall } from "../src/dataplane/nft-firewall.js";
import { NamespaceSet } from "../../lab/src/netns.js";
import { run } from "../../lab/src/exec.js";

const input = { ipv4: { network: parseCidr("172.30.0.0/16")!, ownSubnet: parseCidr("172.30.5.0/24")! } };
const moved = { ipv4: { ...input.ipv4, ownSubnet: parseCidr("172.30.6.0/24")! } };
const ipv6 = { network: parseCidr6("fd30::/56")!, ownSubnet: parseCidr6("fd30:0:0:5::/64")! };
const dual = { ...input, ipv6 };

function inNamespace(ns: string): CommandRunner {
  return { run: (file, args, stdin) => processRunner.run("ip", ["netns", "exec", ns, file, ...args], stdin) };
}

for (const [name, make] of [
  ["nftables", (r: CommandRunner): Firewall => new NftFirewall(r)],
  ["iptables", (r: CommandRunner): Firewall => new IptablesFirewall(r)],
] as const) {
  describe(`firewall: ${name}`, function () {
    this.timeout(30_000);
    const namespaces = new NamespaceSet();
    let ns = "";
    let firewall: Firewall;

    before(async () => {
      ns = await namespaces.add();
      firewall = make(inNamespace(ns));
    });
    after(async () => {
      await namespaces.dispose();
    });

    it("installs the rules and recognises them", async () => {
      assert.equal(await firewall.check(input), false);
      await firewall.apply(input);
      assert.equal(await firewall.check(input), true);
      assert.equal(await firewall.check(moved), false, "a rule set for another subnet is not ours-and-current");
    });

    it("replaces them atomically and idempotently (no duplicate rules or jumps)", async () => {
      await firewall.apply(input);
      await firewall.apply(moved);
      await firewall.apply(moved);
      assert.equal(await firewall.check(moved), true);
      if (name === "iptables") {
        const { stdout } = await run("ip", ["netns", "exec", ns, "iptables-save"]);
        assert.equal(
          stdout.split("\n").filter((l) => l.startsWith("-A POSTROUTING") && l.includes("TRELLIS-POSTRTG")).length,
          1,
        );
        assert.equal(stdout.split("\n").filter((l) => l.startsWith("-A TRELLIS-POSTRTG")).length, 6);
      } else {
        const { stdout } = await run("ip", ["netns", "exec", ns, "nft", "list", "ruleset"]);
        assert.equal(stdout.match(/^table /gm)?.length, 1);
        assert.match(stdout, /ip saddr 172\.30\.6\.0\/24 ip daddr 172\.30\.0\.0\/16 return/);
      }
    });

    it("notices a removed rule", async () => {
      if (name === "iptables")
        await run("ip", ["netns", "exec", ns, "iptables", "-t", "nat", "-D", "TRELLIS-POSTRTG", "1"]);
      else await run("ip", ["netns", "exec", ns, "nft", "flush", "chain", "ip", "trellis", "forward"]);
      assert.equal(await firewall.check(moved), false);
    });

    it("dual-stack: installs the IPv6 rules beside the IPv4 ones, and notices either family's removed", async () => {
      await firewall.apply(dual);
      assert.equal(await firewall.check(dual), true);
      assert.equal(await firewall.check(input), true, "the IPv4 rules are the same as before");
      const v6 =
        name === "iptables"
          ? (await run("ip", ["netns", "exec", ns, "ip6tables-save", "-t", "nat"])).stdout
          : (await run("ip", ["netns", "exec", ns, "nft", "list", "table", "ip6", "trellis"])).stdout;
      assert.match(
        v6,
        name === "iptables"
          ? /-A TRELLIS-POSTRTG -s fd30::\/56 ! -d ff00::\/8 .*-j MASQUERADE --random-fully/
          : /ip6 saddr fd30::\/56 ip6 daddr != ff00::\/8 masquerade fully-random/,
      );
      if (name === "iptables")
        await run("ip", ["netns", "exec", ns, "ip6tables", "-t", "nat", "-D", "TRELLIS-POSTRTG", "1"]);
      else await run("ip", ["netns", "exec", ns, "nft", "flush", "chain", "ip6", "trellis", "postrouting"]);
      assert.equal(await firewall.check(input), true, "the IPv4 rules are still in place");
      assert.equal(await firewall.check(dual), false, "the IPv6 rules are not");
      await firewall.apply(dual);
      assert.equal(await firewall.check(dual), true);
    });

    it("removes everything, twice without error", async () => {
      await firewall.apply({ ...moved, ipv6 });
      await firewall.remove();
      await firewall.remove();
      assert.equal(await firewall.check(moved), false);
      const listings =
        name === "iptables"
          ? [
              await run("ip", ["netns", "exec", ns, "iptables-save"]),
              await run("ip", ["netns", "exec", ns, "ip6tables-save"]),
            ]
          : [await run("ip", ["netns", "exec", ns, "nft", "list", "ruleset"])];
      for (const listing of listings) assert.doesNotMatch(listing.stdout, /TRELLIS|trellis/);
    });
  });
}
