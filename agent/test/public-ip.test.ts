import assert from "node:assert/strict";
import { InvalidArgumentError, isTrellisError } from "../../lib/src/errors.js";
import type { HostInterface } from "../src/node/host-network.js";
import { chooseUnderlay } from "../src/node/public-ip.js";

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
});
