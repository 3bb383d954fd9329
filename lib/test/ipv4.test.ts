import assert from "node:assert/strict";
import {
  canonical,
  containsCidr,
  containsIp,
  formatCidr,
  formatIpv4,
  isCanonical,
  lastAddress,
  parseCidr,
  parseIpv4,
} from "#lib/ipv4.js";
import { isUnicastMac } from "#lib/names.js";

describe("ipv4", () => {
  it("parses strict dotted quads only", () => {
    assert.equal(parseIpv4("172.30.5.1"), 0xac1e0501);
    assert.equal(parseIpv4("0.0.0.0"), 0);
    assert.equal(parseIpv4("255.255.255.255"), 0xffffffff);
    for (const bad of ["1.2.3", "1.2.3.4.5", "01.2.3.4", "256.1.1.1", "1.2.3.-1", " 1.2.3.4", "a.b.c.d", ""])
      assert.equal(parseIpv4(bad), undefined, bad);
  });

  it("formats what it parses", () => {
    for (const text of ["10.0.0.1", "172.30.255.0", "255.255.255.255"])
      assert.equal(formatIpv4(parseIpv4(text)!), text);
  });

  it("parses CIDRs and knows canonical form, containment and the last address", () => {
    const net = parseCidr("172.30.0.0/16")!;
    assert.equal(formatCidr(net), "172.30.0.0/16");
    assert.equal(parseCidr("172.30.0.0/33"), undefined);
    assert.equal(parseCidr("172.30.0.0"), undefined);
    assert.equal(parseCidr("172.30.0.0/016"), undefined);
    assert.ok(!isCanonical(parseCidr("172.30.1.0/16")!));
    assert.equal(formatCidr(canonical(parseCidr("172.30.1.9/16")!)), "172.30.0.0/16");
    assert.ok(containsIp(net, parseIpv4("172.30.200.7")!));
    assert.ok(!containsIp(net, parseIpv4("172.31.0.0")!));
    assert.ok(containsCidr(net, parseCidr("172.30.5.0/24")!));
    assert.ok(!containsCidr(parseCidr("172.30.5.0/24")!, net));
    assert.equal(formatIpv4(lastAddress(parseCidr("172.30.5.0/24")!)), "172.30.5.255");
    assert.ok(containsIp(parseCidr("0.0.0.0/0")!, 0xffffffff));
  });

  it("recognises unicast MACs in lowercase colon form", () => {
    assert.ok(isUnicastMac("02:42:ac:11:00:02"));
    assert.ok(!isUnicastMac("01:00:5e:00:00:01"));
    assert.ok(!isUnicastMac("02:42:AC:11:00:02"));
    assert.ok(!isUnicastMac("02-42-ac-11-00-02"));
  });
});
