// Pure parts of the adapter: conversions, request building and error translation (no kernel needed).
import assert from "node:assert/strict";
import { isTrellisError } from "../../src/errors.js";
import { bytesToIpv4, bytesToMac, ipv4ToBytes, macToBytes, portToBytes, scopeName } from "../../src/netlink/codec.js";
import { NetlinkError, errnoOf, isNetlinkErrno, translateError } from "../../src/netlink/errors.js";
import { routeMessage } from "../../src/netlink/requests.js";
import { sysctlPath } from "../../src/netlink/sysctl.js";

describe("netlink adapter: codec and errors", () => {
  it("converts IPv4 addresses, MACs and the big-endian vxlan port", () => {
    assert.deepEqual([...ipv4ToBytes("10.244.1.0", "dst")], [10, 244, 1, 0]);
    assert.equal(bytesToIpv4(Buffer.from([172, 30, 0, 255])), "172.30.0.255");
    assert.equal(bytesToIpv4(Buffer.alloc(16)), undefined);
    assert.equal(bytesToMac(macToBytes("0A:58:0a:F4:01:00", "mac")), "0a:58:0a:f4:01:00");
    assert.deepEqual([...portToBytes(8472)], [0x21, 0x18]);
    assert.equal(scopeName(253), "link");
    assert.equal(scopeName(100), "site");
  });

  it("rejects malformed input with the field name, before anything reaches the kernel", () => {
    assert.throws(
      () => ipv4ToBytes("10.244.1.256", "gateway"),
      (e) => isTrellisError(e, "INVALID_ARGUMENT") && /gateway "10.244.1.256"/.test(e.message),
    );
    assert.throws(
      () => macToBytes("0a:58:0a:f4:01", "mac"),
      (e) => isTrellisError(e, "INVALID_ARGUMENT"),
    );
    assert.throws(
      () => routeMessage({ dst: "10.0.0.0", prefixLen: 33 }, false),
      (e) => isTrellisError(e, "INVALID_ARGUMENT"),
    );
  });

  it("builds route requests: onlink in rtm_flags, big tables in RTA_TABLE, deletes match any scope", () => {
    const add = routeMessage(
      { dst: "10.244.2.0", prefixLen: 24, gateway: "10.244.2.0", oif: 5, onlink: true, protocol: 0x91, table: 1000 },
      false,
    );
    assert.deepEqual(add.data, {
      family: 2,
      dstLen: 24,
      table: 0,
      protocol: 0x91,
      scope: 0,
      type: 1,
      flags: { __unknown: 4 },
    });
    assert.equal(add.attrs.table, 1000);
    const device = routeMessage({ dst: "10.244.0.0", prefixLen: 16, oif: 5 }, false);
    assert.equal(device.data.scope, 253, "a route without gateway defaults to scope link");
    assert.equal(device.data.protocol, 3, "like ip route: protocol boot");
    const del = routeMessage({ dst: "10.244.2.0", prefixLen: 24 }, true);
    assert.deepEqual(del.data, { family: 2, dstLen: 24, table: 254, scope: 255 });
  });

  it("maps sysctl(8) names to /proc/sys paths", () => {
    assert.equal(sysctlPath("net.ipv4.ip_forward"), "/proc/sys/net/ipv4/ip_forward");
    assert.equal(sysctlPath("net.ipv4.conf.flannel/1.forwarding"), "/proc/sys/net/ipv4/conf/flannel.1/forwarding");
    assert.throws(
      () => sysctlPath("net..x"),
      (e) => isTrellisError(e, "INVALID_ARGUMENT"),
    );
    assert.throws(
      () => sysctlPath("net.ipv4.../x"),
      (e) => isTrellisError(e, "INVALID_ARGUMENT"),
    );
  });

  it("finds the errno wherever the package or a syscall put it", () => {
    assert.equal(errnoOf(new Error("Request rejected: ENODEV")), "ENODEV");
    assert.equal(errnoOf(Object.assign(new Error("x"), { code: "ENOBUFS" })), "ENOBUFS");
    assert.equal(errnoOf(new Error("Timeout has been reached")), "ETIMEDOUT");
    assert.equal(errnoOf(new Error("Operation not permitted")), "EPERM");
    assert.equal(errnoOf(new Error("something else")), "EPROTO");
  });

  it("translates once into a typed error naming the operation and the object", () => {
    const error = translateError(new Error("Request rejected: EEXIST"), "create vxlan link", "flannel.1");
    assert.ok(error instanceof NetlinkError);
    assert.equal(error.code, "NETLINK");
    assert.equal(error.errno, "EEXIST");
    assert.equal(error.operation, "create vxlan link");
    assert.equal(error.object, "flannel.1");
    assert.equal(error.message, "create vxlan link flannel.1 failed: file already exists (EEXIST)");
    assert.ok(isNetlinkErrno(error, "ENOENT", "EEXIST"));
    assert.ok(!isNetlinkErrno(error, "ENOENT"));
    assert.equal(translateError(error, "other", "x"), error, "already translated errors pass through");
  });

  it("reports EPERM/EACCES as PERMISSION_DENIED in plain words", () => {
    for (const errno of ["EPERM", "EACCES"]) {
      const error = translateError(new Error(`Request rejected: ${errno}`), "create vxlan link", "flannel.1");
      assert.equal(error.code, "PERMISSION_DENIED");
      assert.equal(error.message, "create vxlan link flannel.1: needs root or CAP_NET_ADMIN");
    }
  });
});
