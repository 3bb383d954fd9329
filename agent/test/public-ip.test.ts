import assert from "node:assert/strict";
import { InvalidArgumentError, isTrellisError } from "#lib/errors.js";
import type { HostInterface } from "../src/node/host-network.js";
import { chooseUnderlay, chooseUnderlay6, missingUnderlay6 } from "../src/node/public-ip.js";

const interfaces: HostInterface[] = [
  { name: "lo", index: 1, mtu: 65536, up: true, addresses: ["127.0.0.1"] },
  { name: "eth0", index: 2, mtu: 1500, up: true, addresses: ["10.0.2.15"] },
  { name: "eth1", index: 3, mtu: 9000, up: true, addresses: ["192.168.56.11", "192.168.56.100"] },
  { name: "eth2", index: 4, mtu: 1500, up: true, addresses: [] },
];

function rejects(fn: () => unknown, field: string, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof InvalidArgumentError && e.field === field && pattern.test(e.message));
}

describe("underlay and public IP", () => {
  it("defaults to the default route's interface (the Vagrant NAT trap: give --iface)", () => {
    assert.deepEqual(chooseUnderlay({}, interfaces, "eth0"), {
      iface: interfaces[1],
      localIp: "10.0.2.15",
      publicIp: "10.0.2.15",
    });
  });

  it("takes --iface by name or by one of its addresses", () => {
    assert.equal(chooseUnderlay({ iface: "eth1" }, interfaces, "eth0").localIp, "192.168.56.11");
    const byIp = chooseUnderlay({ iface: "192.168.56.100" }, interfaces, "eth0");
    assert.deepEqual([byIp.iface.name, byIp.localIp], ["eth1", "192.168.56.100"]);
  });

  it("finds the interface of --public-ip, and accepts a NATed one with --iface", () => {
    assert.equal(chooseUnderlay({ publicIp: "192.168.56.11" }, interfaces, "eth0").iface.name, "eth1");
    assert.deepEqual(
      chooseUnderlay({ iface: "eth1", publicIp: "203.0.113.7" }, interfaces, "eth0").publicIp,
      "203.0.113.7",
    );
  });

  it("names the flag, the value and the interfaces there are", () => {
    rejects(
      () => chooseUnderlay({ iface: "eth9" }, interfaces, "eth0"),
      "--iface",
      /this node has: eth0 \(10\.0\.2\.15\), eth1 \(192\.168\.56\.11, 192\.168\.56\.100\), eth2 \(no IPv4\)/,
    );
    rejects(
      () => chooseUnderlay({ iface: "eth2" }, interfaces, "eth0"),
      "--iface",
      /must have an IPv4 address; eth2 has none/,
    );
    rejects(() => chooseUnderlay({ iface: "lo" }, interfaces, "eth0"), "--iface", /loopback/);
    rejects(
      () => chooseUnderlay({ publicIp: "10.9.9.9" }, interfaces, "eth0"),
      "--public-ip",
      /not on any interface.*for a NATed address also give --iface/,
    );
    rejects(() => chooseUnderlay({ publicIp: "127.0.0.1" }, interfaces, "eth0"), "--public-ip", /not loopback/);
    rejects(() => chooseUnderlay({ publicIp: "10.0.2" }, interfaces, "eth0"), "--public-ip", /must be an IPv4 address/);
    assert.throws(
      () => chooseUnderlay({}, interfaces, undefined),
      (e: unknown) => isTrellisError(e, "NOT_FOUND") && /no IPv4 default route.*give --iface/.test(e.message),
    );
  });

  describe("IPv6 underlay (an IPv6 pod network only)", () => {
    const eth1: HostInterface = {
      name: "eth1",
      index: 3,
      mtu: 9000,
      up: true,
      addresses: ["192.168.56.11"],
      addresses6: ["fd00:56::11", "2001:db8::11"],
    };

    it("takes the interface's first global IPv6 address, or --public-ipv6 among them, written as the kernel does", () => {
      assert.deepEqual(chooseUnderlay6({}, eth1), { localIp6: "fd00:56::11", publicIpv6: "fd00:56::11" });
      assert.deepEqual(chooseUnderlay6({ publicIpv6: "2001:DB8:0::11" }, eth1), {
        localIp6: "2001:db8::11",
        publicIpv6: "2001:db8::11",
      });
    });

    it("accepts a --public-ipv6 that is not on the interface (NAT66), sending from the interface's own", () => {
      assert.deepEqual(chooseUnderlay6({ publicIpv6: "2001:db8:ff::7" }, eth1), {
        localIp6: "fd00:56::11",
        publicIpv6: "2001:db8:ff::7",
      });
    });

    it("is absent without a global IPv6 address, and refuses a --public-ipv6 it cannot send from or reach", () => {
      const bare = { ...eth1, addresses6: [] };
      assert.equal(chooseUnderlay6({}, bare), undefined);
      assert.equal(chooseUnderlay6({}, { ...eth1, addresses6: undefined }), undefined);
      rejects(
        () => chooseUnderlay6({ publicIpv6: "fd00::9" }, bare),
        "--public-ipv6",
        /eth1, which has no global IPv6/,
      );
      rejects(() => chooseUnderlay6({ publicIpv6: "fe80::1" }, eth1), "--public-ipv6", /not ::1, link-local/);
    });

    it("names the flag and the interface when a backend needs an IPv6 underlay there is not", () => {
      const given = missingUnderlay6({ iface: "eth1" }, eth1, "host-gw");
      assert.ok(given instanceof InvalidArgumentError && given.field === "--iface");
      assert.match(given.message, /must have a global IPv6 address: the host-gw backend .*; eth1 has none/);
      const defaulted = missingUnderlay6({}, eth1, "host-gw");
      assert.ok(isTrellisError(defaulted, "NOT_FOUND"));
      assert.match(
        defaulted.message,
        /underlay interface eth1 has no global IPv6 address.*give --iface \(and --public-ipv6\)/,
      );
    });
  });
});
