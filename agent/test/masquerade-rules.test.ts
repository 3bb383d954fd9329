import assert from "node:assert/strict";
import { parseCidr } from "../../lib/src/ipv4.js";
import { fingerprint, iptablesRestoreInput, nftScript, ruleCounts } from "../src/dataplane/masquerade-rules.js";

const input = { network: parseCidr("172.30.0.0/16")!, ownSubnet: parseCidr("172.30.5.0/24")! };

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
    assert.notEqual(fingerprint(input), fingerprint({ ...input, ownSubnet: parseCidr("172.30.6.0/24")! }));
    assert.equal(fingerprint(input), fingerprint({ ...input }));
  });
});
