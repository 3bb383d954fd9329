import assert from "node:assert/strict";
import { formatCidr, parseCidr } from "../src/ipv4.js";
import { formatSubnetEnv, parseSubnetEnv } from "../src/subnet-env.js";

describe("subnet.env", () => {
  it("writes flannel's keys and reads them back", () => {
    const text = formatSubnetEnv({
      network: parseCidr("172.30.0.0/16")!,
      subnet: parseCidr("172.30.5.1/24")!,
      mtu: 1450,
      ipMasq: true,
    });
    assert.equal(
      text,
      "FLANNEL_NETWORK=172.30.0.0/16\nFLANNEL_SUBNET=172.30.5.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
    );
    const parsed = parseSubnetEnv(text);
    assert.ok(parsed.ok);
    assert.equal(formatCidr(parsed.value.subnet), "172.30.5.1/24");
    assert.equal(parsed.value.mtu, 1450);
  });

  it("ignores comments, blank lines and unknown keys; IPMASQ defaults to false", () => {
    const parsed = parseSubnetEnv(
      "# written by flannel\n\nFLANNEL_NETWORK=10.0.0.0/8\nFLANNEL_SUBNET=10.1.2.1/24\nFLANNEL_MTU=1500\nFLANNEL_IPV6_NETWORK=x\n",
    );
    assert.ok(parsed.ok);
    assert.equal(parsed.value.ipMasq, false);
  });

  it("names the first missing or malformed key", () => {
    const cases: [string, RegExp][] = [
      ["", /FLANNEL_NETWORK is missing/],
      ["FLANNEL_NETWORK=10.0.0.0/8\n", /FLANNEL_SUBNET is missing/],
      [
        "FLANNEL_NETWORK=10.0.0.0/8\nFLANNEL_SUBNET=10.1.2.1/24\nFLANNEL_MTU=12\n",
        /FLANNEL_MTU="12" is not an integer between 68 and 65535/,
      ],
      ["FLANNEL_NETWORK=ten\n", /FLANNEL_NETWORK="ten" is not an IPv4 CIDR/],
      ["garbage line\n", /is not KEY=VALUE/],
      [
        "FLANNEL_NETWORK=10.0.0.0/8\nFLANNEL_SUBNET=10.1.2.1/24\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=yes\n",
        /FLANNEL_IPMASQ="yes" is not true or false/,
      ],
    ];
    for (const [text, error] of cases) {
      const parsed = parseSubnetEnv(text);
      assert.ok(!parsed.ok, text);
      assert.match(parsed.error, error);
    }
  });
});
