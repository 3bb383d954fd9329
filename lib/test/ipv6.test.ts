import assert from "node:assert/strict";
import {
  canonical6,
  containsCidr6,
  containsIp6,
  formatCidr6,
  formatIpv6,
  isCanonical6,
  isLinkLocal6,
  isRoutableUnicast6,
  maskOf6,
  overlaps6,
  parseCidr6,
  parseIpv6,
  sizeOf6,
} from "#lib/ipv6.js";

const ip = (text: string): bigint => parseIpv6(text) ?? assert.fail(text);
const cidr = (text: string): NonNullable<ReturnType<typeof parseCidr6>> => parseCidr6(text) ?? assert.fail(text);

describe("ipv6", () => {
  it("parses every textual form and prints RFC 5952's (what `ip -6` prints)", () => {
    const cases: [string, string][] = [
      ["fd30:0000:0000:0005:0000:0000:0000:0000", "fd30:0:0:5::"],
      ["FD30::5:0:0:0:0", "fd30:0:0:5::"],
      ["::1", "::1"],
      ["::", "::"],
      ["fe80::1", "fe80::1"],
      ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
      ["2001:0db8::", "2001:db8::"],
      ["1:0:1:0:1:0:1:0", "1:0:1:0:1:0:1:0"],
    ];
    for (const [text, expected] of cases) assert.equal(formatIpv6(ip(text)), expected, text);
    assert.equal(ip("::1"), 1n);
    assert.equal(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), (1n << 128n) - 1n);
  });

  it("refuses what is not a plain IPv6 address: IPv4, zone ids, embedded dotted IPv4, junk", () => {
    for (const bad of ["172.30.0.1", "fe80::1%eth0", "::ffff:1.2.3.4", "fd30:::1", "fd30::g", "1:2:3:4:5:6:7:8:9", ""])
      assert.equal(parseIpv6(bad), undefined, bad);
  });

  it("parses CIDRs with lengths 0 to 128 only, and knows canonical ones", () => {
    assert.deepEqual(cidr("fd30::/56"), { ip: ip("fd30::"), prefixLen: 56 });
    assert.equal(formatCidr6(cidr("fd30:0:0:5::/64")), "fd30:0:0:5::/64");
    for (const bad of ["fd30::/129", "fd30::/-1", "fd30::/056x", "fd30::", "172.30.0.0/16", "fd30::/"])
      assert.equal(parseCidr6(bad), undefined, bad);
    assert.ok(isCanonical6(cidr("fd30::/56")));
    assert.ok(!isCanonical6(cidr("fd30:0:0:1ff::/56")));
    assert.equal(formatCidr6(canonical6(cidr("fd30:0:0:1ff::7/56"))), "fd30:0:0:100::/56");
    assert.ok(isCanonical6(cidr("::/0")) && isCanonical6(cidr("::1/128")));
  });

  it("does prefix arithmetic over all 128 bits", () => {
    assert.equal(maskOf6(0), 0n);
    assert.equal(maskOf6(128), (1n << 128n) - 1n);
    assert.equal(maskOf6(64), ((1n << 64n) - 1n) << 64n);
    assert.equal(sizeOf6(64), 1n << 64n);
    assert.equal(sizeOf6(128), 1n);
    const net = cidr("fd30::/56");
    assert.ok(containsIp6(net, ip("fd30:0:0:ff:ffff:ffff:ffff:ffff")));
    assert.ok(!containsIp6(net, ip("fd30:0:0:100::")));
    assert.ok(containsCidr6(net, cidr("fd30:0:0:5::/64")));
    assert.ok(!containsCidr6(cidr("fd30:0:0:5::/64"), net), "a shorter prefix is not inside a longer one");
    assert.ok(overlaps6(net, cidr("fd30:0:0:5::/64")) && overlaps6(cidr("fd30:0:0:5::/64"), net));
    assert.ok(!overlaps6(cidr("fd30:0:0:5::/64"), cidr("fd30:0:0:6::/64")));
  });

  it("tells link-local and routable unicast addresses apart (ULA is routable)", () => {
    assert.deepEqual(["fe80::1", "febf::1", "fec0::1", "fd00::1"].map(isLinkLocal6), [true, true, false, false]);
    assert.deepEqual(
      ["fd30::1", "2001:db8::7", "::", "::1", "fe80::1", "ff02::1", "10.0.0.1", "junk"].map(isRoutableUnicast6),
      [true, true, false, false, false, false, false, false],
    );
  });
});
