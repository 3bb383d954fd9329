// Pure parts of the adapter: conversions, request building and error translation (no kernel needed).
import assert from "node:assert/strict";
import { isTrellisError } from "#lib/errors.js";
import {
  bytesToIp,
  bytesToIpv4,
  bytesToIpv6,
  bytesToMac,
  ipToBytes,
  ipv4ToBytes,
  ipv6ToBytes,
  macToBytes,
  portToBytes,
  scopeName,
} from "#lib/netlink/codec.js";
import { NetlinkError, errnoOf, isNetlinkErrno, translateError } from "#lib/netlink/errors.js";
import { ifla } from "#lib/netlink/package.js";
import {
  addressMessage,
  fdbMessage,
  neighborMessage,
  nested,
  routeMessage,
  vxlanChangeInfo,
  vxlanInfo,
} from "#lib/netlink/requests.js";
import { sysctlPath } from "#lib/netlink/sysctl.js";

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

  it("converts IPv6 addresses both ways, printing RFC 5952 form as `ip -6` does", () => {
    const canonical = (text: string): string | undefined => bytesToIpv6(ipv6ToBytes(text, "dst"));
    for (const text of ["fd30:0:0:5::", "::1", "fe80::1", "2001:db8::", "::", "2001:db8:0:1:1:1:1:1", "1::"])
      assert.equal(canonical(text), text, text);
    assert.deepEqual([...ipv6ToBytes("::1", "dst")], [...Array<number>(15).fill(0), 1]);
    assert.equal(canonical("FD30:0000:0000:0005:0000:0000:0000:0000"), "fd30:0:0:5::");
    assert.equal(canonical("2001:0db8:0000:0000:0000:0000:0000:0001"), "2001:db8::1");
    assert.equal(canonical("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1", "the first of two equal runs");
    assert.equal(canonical("2001:0:0:1:0:0:0:1"), "2001:0:0:1::1", "the longest run");
    assert.equal(canonical("2001:db8:0:1:0:1:0:1"), "2001:db8:0:1:0:1:0:1", "a single zero group stays");
    assert.equal(canonical("64:ff9b::192.0.2.33"), "64:ff9b::c000:221", "a dotted tail is read, printed in hex");
    assert.equal(bytesToIpv6(Buffer.from("00000000000000000000ffffc0000221", "hex")), "::ffff:192.0.2.33");
    assert.equal(bytesToIpv6(Buffer.alloc(4)), undefined);
    assert.deepEqual(ipToBytes("fd00::1", "local").family, 6);
    assert.deepEqual(ipToBytes("10.0.0.1", "local").family, 4);
    assert.equal(bytesToIp(Buffer.alloc(16)), "::");
    assert.equal(bytesToIp(Buffer.alloc(4)), "0.0.0.0");
    assert.equal(bytesToIp(Buffer.alloc(4), 6), undefined, "bytes of the other family are no address");
  });

  it("rejects bad, zoned and IPv4-mapped IPv6 input naming the field", () => {
    const invalid = (text: string, pattern: RegExp) => {
      assert.throws(
        () => ipToBytes(text, "gateway"),
        (e) =>
          isTrellisError(e, "INVALID_ARGUMENT") &&
          e.message.startsWith(`gateway ${JSON.stringify(text)}`) &&
          pattern.test(e.message),
        text,
      );
    };
    for (const text of ["fd30::5::1", "fd30:0:0:5:0:0:0:0:1", "g::1", ":1", "1:2:3:4:5:6:7"])
      invalid(text, /an IPv6 address such as/);
    invalid("fe80::1%eth0", /zone id/);
    invalid("::ffff:10.0.0.1", /IPv4-mapped/);
    invalid("::ffff:a00:1", /IPv4-mapped/);
    invalid("10.0.0", /IPv4 address .*or an IPv6 address/);
  });

  it("builds IPv6 requests: AF_INET6, prefixes up to 128, a gateway of dst's family only", () => {
    const add = routeMessage(
      { dst: "FD30:0:0:5::", prefixLen: 64, gateway: "fd00::2", oif: 5, onlink: true, protocol: 0x91 },
      false,
    );
    assert.equal(add.data.family, 10);
    assert.equal(add.data.dstLen, 64);
    assert.equal(bytesToIpv6(add.attrs.dst), "fd30:0:0:5::");
    assert.equal(bytesToIpv6(add.attrs.gateway), "fd00::2");
    assert.deepEqual(add.data.flags, { __unknown: 4 });
    assert.equal(routeMessage({ dst: "::", prefixLen: 128 }, true).data.dstLen, 128);
    assert.throws(
      () => routeMessage({ dst: "fd30::", prefixLen: 129 }, false),
      (e) => isTrellisError(e, "INVALID_ARGUMENT") && /prefixLen 129 .*0 to 128/.test(e.message),
    );
    for (const [dst, gateway] of [
      ["fd30::", "10.0.0.1"],
      ["10.0.0.0", "fd00::1"],
    ] as const) {
      assert.throws(
        () => routeMessage({ dst, prefixLen: 24, gateway }, false),
        (e) =>
          isTrellisError(e, "INVALID_ARGUMENT") &&
          e.message.startsWith(`gateway "${gateway}"`) &&
          e.message.includes(`dst "${dst}"`),
      );
    }
    const v4 = routeMessage({ dst: "10.0.0.0", prefixLen: 8, gateway: "10.0.0.1" }, false);
    assert.equal(v4.data.family, 2, "IPv4 as before");

    const address = addressMessage({ index: 3, address: "fd00::1", prefixLen: 64 });
    assert.deepEqual(address.data, { family: 10, prefixlen: 64, index: 3 });
    assert.deepEqual(address.attrs.flags, { nodad: true }, "added without DAD");
    assert.equal(addressMessage({ index: 3, address: "fd00::1", prefixLen: 64 }, true).attrs.flags, undefined);
    assert.equal(addressMessage({ index: 3, address: "10.0.0.1", prefixLen: 8 }).attrs.flags, undefined);
    assert.throws(
      () => addressMessage({ index: 3, address: "10.0.0.1", prefixLen: 64 }),
      (e) => isTrellisError(e, "INVALID_ARGUMENT"),
    );

    assert.equal(neighborMessage({ index: 3, ip: "fe80::1", mac: "0a:58:0a:f4:02:00" }).data.family, 10);
    assert.equal(fdbMessage({ index: 3, mac: "0a:58:0a:f4:02:00", dst: "fd00::2" }).attrs.dst?.length, 16);
    assert.equal(fdbMessage({ index: 3, mac: "0a:58:0a:f4:02:00", dst: "10.0.0.2" }).attrs.dst?.length, 4);
  });

  it("puts a vxlan's IPv6 local address in IFLA_VXLAN_LOCAL6, an IPv4 one in IFLA_VXLAN_LOCAL", () => {
    const vxlanData = (info: ReturnType<typeof vxlanInfo>) => {
      const parsed = ifla.parseInfo(nested(info));
      assert.ok(parsed.data);
      return ifla.parseVxlan(parsed.data);
    };
    const v6 = vxlanData(vxlanInfo({ name: "vx6", vni: 6, port: 4789, local: "fd00::1", underlayIndex: 2 }));
    assert.equal(bytesToIpv6(v6.local6), "fd00::1");
    assert.equal(v6.local, undefined);
    const v4 = vxlanData(vxlanInfo({ name: "vx4", vni: 4, port: 4789, local: "10.0.0.1", underlayIndex: 2 }));
    assert.equal(bytesToIpv4(v4.local), "10.0.0.1");
    assert.equal(v4.local6, undefined);
    assert.equal(bytesToIpv6(vxlanData(vxlanChangeInfo({ local: "fd00::5" })).local6), "fd00::5");
  });

  it("maps sysctl(8) names to /proc/sys paths", () => {
    assert.equal(sysctlPath("net.ipv4.ip_forward"), "/proc/sys/net/ipv4/ip_forward");
    assert.equal(sysctlPath("net.ipv4.conf.flannel/1.forwarding"), "/proc/sys/net/ipv4/conf/flannel.1/forwarding");
    assert.equal(sysctlPath("net.ipv6.conf.all.forwarding"), "/proc/sys/net/ipv6/conf/all/forwarding");
    assert.equal(sysctlPath("net.ipv6.conf.flannel/1.accept_ra"), "/proc/sys/net/ipv6/conf/flannel.1/accept_ra");
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
