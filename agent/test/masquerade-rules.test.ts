import assert from "node:assert/strict";
import { parseCidr } from "#lib/ipv4.js";
import { parseCidr6 } from "#lib/ipv6.js";
import { fingerprint, iptablesRestoreInput, nftScript, ruleCounts } from "../src/dataplane/masquerade-rules.js";

const input = { ipv4: { network: parseCidr("172.30.0.0/16")!, ownSubnet: parseCidr("172.30.5.0/24")! } };
const ipv6 = { network: parseCidr6("fd30::/56")!, ownSubnet: parseCidr6("fd30:0:0:5::/64")! };

describe("masquerade rules", () => {
  it("render flannel's rules for nftables, replacing our table in one transaction", () => {
    const script = nftScript(input);
    const lines = script.split("\n");
    assert.deepEqual(lines.slice(0, 3), ["table ip trellis", "delete table ip trellis", "table ip trellis {"]);
    assert.match(
      script,
      /meta mark & 0x00004000 == 0x00004000 return comment "trellis:[0-9a-f]{12} kube-proxy masquerades it"/,
    );
    assert.match(script, /ip saddr 172\.30\.5\.0\/24 ip daddr 172\.30\.0\.0\/16 return/);
    assert.match(script, /ip saddr 172\.30\.0\.0\/16 ip daddr != 224\.0\.0\.0\/4 masquerade fully-random/);
    assert.match(script, /ip saddr != 172\.30\.0\.0\/16 ip daddr 172\.30\.0\.0\/16 masquerade fully-random/);
    assert.match(
      script,
      /type filter hook forward priority filter; policy accept;\n\s+ip saddr 172\.30\.0\.0\/16 accept/,
    );
    assert.deepEqual(ruleCounts(input), { postrouting: 6, forward: 2 });
  });

  it("render the same rules for iptables-restore in chains of our own", () => {
    const text = iptablesRestoreInput(input);
    assert.match(
      text,
      /^\*nat\n:TRELLIS-POSTRTG - \[0:0\]\n-A TRELLIS-POSTRTG -m mark --mark 0x00004000\/0x00004000 -j RETURN/,
    );
    assert.match(text, /-A TRELLIS-POSTRTG -s 172\.30\.0\.0\/16 ! -d 224\.0\.0\.0\/4 -j MASQUERADE --random-fully/);
    assert.match(text, /\*filter\n:TRELLIS-FWD - \[0:0\]\n-A TRELLIS-FWD -s 172\.30\.0\.0\/16 -j ACCEPT/);
  });

  it("fingerprint changes with the lease", () => {
    assert.notEqual(
      fingerprint(input),
      fingerprint({ ipv4: { ...input.ipv4, ownSubnet: parseCidr("172.30.6.0/24")! } }),
    );
    assert.equal(fingerprint(input), fingerprint({ ...input }));
  });

  it("dual-stack: the same rules for the IPv6 network in table ip6 trellis, both tables in one transaction", () => {
    const script = nftScript({ ...input, ipv6 });
    const lines = script.split("\n");
    assert.deepEqual(lines.slice(0, 3), ["table ip trellis", "delete table ip trellis", "table ip trellis {"]);
    const v6 = lines.indexOf("table ip6 trellis");
    assert.ok(v6 > 0, "the ip6 table follows the ip one");
    assert.deepEqual(lines.slice(v6, v6 + 3), ["table ip6 trellis", "delete table ip6 trellis", "table ip6 trellis {"]);
    const tail = lines.slice(v6).join("\n");
    assert.match(tail, /ip6 saddr fd30:0:0:5::\/64 ip6 daddr fd30::\/56 return comment "trellis: pod to pod: no NAT"/);
    assert.match(tail, /ip6 saddr fd30::\/56 ip6 daddr != ff00::\/8 masquerade fully-random/);
    assert.match(tail, /ip6 saddr != fd30::\/56 ip6 daddr fd30::\/56 masquerade fully-random/);
    assert.match(tail, /ip6 saddr fd30::\/56 accept/);
    assert.doesNotMatch(tail, /\bip saddr|172\.30/, "no IPv4 rule in the ip6 table");
    assert.match(tail, new RegExp(`comment "trellis:${fingerprint({ ipv6 }, 6)} kube-proxy masquerades it"`));
    assert.deepEqual(ruleCounts({ ipv6 }, 6), { postrouting: 6, forward: 2 });
    assert.equal(nftScript(input), nftScript({ ...input, ipv6: undefined }), "IPv4 only: the script of before");
    assert.equal(fingerprint({ ...input, ipv6 }), fingerprint(input), "the IPv4 table's fingerprint does not change");
  });

  it("IPv6-only: only table ip6 trellis is written (an ip table is left alone); ip6tables-restore input alike", () => {
    const script = nftScript({ ipv6 });
    assert.doesNotMatch(script, /table ip trellis/);
    assert.match(script, /^table ip6 trellis\ndelete table ip6 trellis\n/);
    const text = iptablesRestoreInput({ ipv6 }, 6);
    assert.match(text, /-A TRELLIS-POSTRTG -s fd30::\/56 ! -d ff00::\/8 -j MASQUERADE --random-fully/);
    assert.match(text, /-A TRELLIS-FWD -d fd30::\/56 -j ACCEPT/);
    assert.notEqual(
      fingerprint({ ipv6 }, 6),
      fingerprint({ ipv6: { ...ipv6, ownSubnet: parseCidr6("fd30:0:0:6::/64")! } }, 6),
    );
  });
});
