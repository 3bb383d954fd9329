import assert from "node:assert/strict";
import { formatCidr, parseCidr } from "#lib/ipv4.js";
import { parseCidr6 } from "#lib/ipv6.js";
import { formatSubnetEnv, parseSubnetEnv } from "#lib/subnet-env.js";

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
    assert.equal(formatCidr(parsed.value.subnet ?? assert.fail("no subnet")), "172.30.5.1/24");
    assert.equal(parsed.value.mtu, 1450);
  });

  it("writes flannel's dual-stack and IPv6-only files, byte for byte, and reads them back", () => {
    const dual = {
      network: parseCidr("172.30.0.0/16")!,
      subnet: parseCidr("172.30.5.1/24")!,
      ipv6Network: parseCidr6("fd30::/56")!,
      ipv6Subnet: parseCidr6("fd30:0:0:5::1/64")!,
      mtu: 1430,
      ipMasq: true,
    };
    const text = formatSubnetEnv(dual);
    assert.equal(
      text,
      "FLANNEL_NETWORK=172.30.0.0/16\nFLANNEL_SUBNET=172.30.5.1/24\nFLANNEL_IPV6_NETWORK=fd30::/56\nFLANNEL_IPV6_SUBNET=fd30:0:0:5::1/64\nFLANNEL_MTU=1430\nFLANNEL_IPMASQ=true\n",
    );
    assert.deepEqual(parseSubnetEnv(text), { ok: true, value: dual });
    const v6only = { ipv6Network: dual.ipv6Network, ipv6Subnet: dual.ipv6Subnet, mtu: 1430, ipMasq: false };
    const only = formatSubnetEnv(v6only);
    assert.equal(
      only,
      "FLANNEL_IPV6_NETWORK=fd30::/56\nFLANNEL_IPV6_SUBNET=fd30:0:0:5::1/64\nFLANNEL_MTU=1430\nFLANNEL_IPMASQ=false\n",
    );
    assert.deepEqual(parseSubnetEnv(only), { ok: true, value: v6only });
  });

  it("names a family's key missing from its pair, or malformed", () => {
    const cases: [string, RegExp][] = [
      ["FLANNEL_IPV6_NETWORK=fd30::/56\nFLANNEL_MTU=1500\n", /FLANNEL_IPV6_SUBNET is missing/],
      ["FLANNEL_IPV6_SUBNET=fd30::1/64\nFLANNEL_MTU=1500\n", /FLANNEL_IPV6_NETWORK is missing/],
      [
        "FLANNEL_IPV6_NETWORK=172.30.0.0/16\nFLANNEL_IPV6_SUBNET=fd30::1/64\n",
        /FLANNEL_IPV6_NETWORK="172\.30\.0\.0\/16" is not an IPv6 CIDR/,
      ],
      ["FLANNEL_SUBNET=10.1.2.1/24\nFLANNEL_IPV6_NETWORK=fd30::/56\n", /FLANNEL_NETWORK is missing/],
      ["FLANNEL_MTU=1500\n", /FLANNEL_NETWORK is missing/],
    ];
    for (const [text, error] of cases) {
      const parsed = parseSubnetEnv(text);
      assert.ok(!parsed.ok, text);
      assert.match(parsed.error, error);
    }
  });

  it("ignores comments, blank lines and unknown keys; IPMASQ defaults to false", () => {
    const parsed = parseSubnetEnv(
      "# written by flannel\n\nFLANNEL_NETWORK=10.0.0.0/8\nFLANNEL_SUBNET=10.1.2.1/24\nFLANNEL_MTU=1500\nFLANNEL_BACKEND=vxlan\n",
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
