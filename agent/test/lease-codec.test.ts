import assert from "node:assert/strict";
import { parseCidr } from "#lib/ipv4.js";
import { parseCidr6 } from "#lib/ipv6.js";
import {
  decodeLeaseValue,
  encodeLeaseValue,
  parseLeaseKey,
  parseSubnetArg,
  parseSubnetKey,
  subnetKey,
} from "../src/lease/lease-codec.js";

const subnet = parseCidr("172.30.5.0/24")!;

describe("lease codec", () => {
  it("writes keys and values exactly as flannel", () => {
    assert.equal(subnetKey("/coreos.com/network", subnet), "/coreos.com/network/subnets/172.30.5.0-24");
    assert.equal(
      encodeLeaseValue({ publicIp: "192.168.56.12", backendType: "vxlan", vni: 1, vtepMac: "c6:d2:32:6f:8f:44" }),
      '{"PublicIP":"192.168.56.12","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}',
    );
    assert.equal(
      encodeLeaseValue({ publicIp: "10.0.0.2", backendType: "host-gw" }),
      '{"PublicIP":"10.0.0.2","BackendType":"host-gw"}',
    );
  });

  it("reads flannel's values, including ones with extra fields", () => {
    const decoded = decodeLeaseValue(
      '{"PublicIP":"10.0.0.2","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"C6:D2:32:6F:8F:44"}}',
    );
    assert.deepEqual(decoded, {
      ok: true,
      value: { publicIp: "10.0.0.2", backendType: "vxlan", vni: 1, vtepMac: "c6:d2:32:6f:8f:44" },
    });
  });

  it("writes and reads flannel's dual-stack key and value, byte for byte", () => {
    const subnet6 = parseCidr6("fd30:0:0:5::/64")!;
    const key = "/coreos.com/network/subnets/172.30.5.0-24&fd30:0:0:5::-64";
    assert.equal(subnetKey("/coreos.com/network", subnet, subnet6), key);
    assert.deepEqual(parseLeaseKey("/coreos.com/network", key), { subnet, subnet6 });
    assert.deepEqual(parseSubnetKey("/coreos.com/network", key), subnet, "the IPv4 part of a dual-stack key");
    // An IPv6-only node's key, as current flannel writes it: an empty IPv4 part.
    assert.deepEqual(parseLeaseKey("/coreos.com/network", "/coreos.com/network/subnets/0.0.0.0-0&fd30:0:0:7::-64"), {
      subnet: { ip: 0, prefixLen: 0 },
      subnet6: parseCidr6("fd30:0:0:7::/64"),
    });
    const flannel =
      '{"PublicIP":"192.168.56.12","PublicIPv6":"fd00:56::12","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"},"BackendV6Data":{"VNI":1,"VtepMAC":"9a:3e:1c:55:20:01"}}';
    const decoded = decodeLeaseValue(flannel);
    assert.deepEqual(decoded, {
      ok: true,
      value: {
        publicIp: "192.168.56.12",
        publicIpv6: "fd00:56::12",
        backendType: "vxlan",
        vni: 1,
        vtepMac: "c6:d2:32:6f:8f:44",
        v6: { vni: 1, vtepMac: "9a:3e:1c:55:20:01" },
      },
    });
    assert.ok(decoded.ok);
    assert.equal(encodeLeaseValue(decoded.value), flannel, "the exact JSON flannel writes");
    assert.equal(
      encodeLeaseValue({ publicIp: "10.0.0.2", publicIpv6: "fd00::2", backendType: "host-gw" }),
      '{"PublicIP":"10.0.0.2","PublicIPv6":"fd00::2","BackendType":"host-gw"}',
    );
    const upper = decodeLeaseValue('{"PublicIP":"10.0.0.2","PublicIPv6":"FD00:0::2"}');
    assert.ok(upper.ok && upper.value.publicIpv6 === "fd00::2", "PublicIPv6 read in its canonical form");
  });

  it("refuses dual-stack keys that are not one canonical pair", () => {
    const bad = [
      "172.30.5.0-24&fd30:0:0:5::1-64", // host bits in the IPv6 part
      "172.30.5.0-24&fd30:0000:0:5::-64", // not the form flannel writes: a second key for the same pair
      "172.30.5.0-24&FD30:0:0:5::-64",
      "172.30.5.0-24&fd30:0:0:5::-129",
      "172.30.5.0-24&",
      "172.30.5.0-24&172.30.6.0-24",
      "172.30.5.0-24&fd30:0:0:5::-64&fd30:0:0:6::-64",
    ];
    for (const name of bad)
      assert.equal(parseLeaseKey("/coreos.com/network", `/coreos.com/network/subnets/${name}`), undefined, name);
    for (const [text, reason] of [
      ['{"PublicIP":"10.0.0.1","PublicIPv6":"10.0.0.1"}', /PublicIPv6 "10\.0\.0\.1" is not an IPv6 address/],
      ['{"PublicIP":"10.0.0.1","BackendV6Data":{"VNI":"x"}}', /BackendV6Data\.VNI "x" is not a VNI/],
      [
        '{"PublicIP":"10.0.0.1","BackendV6Data":{"VtepMAC":"01:00:5e:00:00:01"}}',
        /BackendV6Data\.VtepMAC .* not a unicast MAC/,
      ],
    ] as const) {
      const decoded = decodeLeaseValue(text);
      assert.ok(!decoded.ok, text);
      assert.match(decoded.reason, reason);
    }
  });

  it("parses keys back and ignores keys that are not subnets", () => {
    assert.deepEqual(parseSubnetKey("/coreos.com/network", "/coreos.com/network/subnets/172.30.5.0-24"), subnet);
    assert.equal(parseSubnetKey("/coreos.com/network", "/coreos.com/network/subnets/172.30.5.1-24"), undefined);
    assert.equal(parseSubnetKey("/coreos.com/network", "/coreos.com/network/subnets/junk"), undefined);
    assert.equal(parseSubnetKey("/coreos.com/network", "/other/subnets/172.30.5.0-24"), undefined);
    assert.deepEqual(parseSubnetArg("172.30.5.0-24"), subnet);
    assert.deepEqual(parseSubnetArg("172.30.5.0/24"), subnet);
    assert.equal(parseSubnetArg("172.30.5.7/24"), undefined);
  });

  it("explains values it cannot use", () => {
    const cases: [string, RegExp][] = [
      ["not json", /not valid JSON/],
      ["[]", /not a JSON object/],
      ['{"PublicIP":"300.1.1.1"}', /PublicIP "300\.1\.1\.1" is not an IPv4 address/],
      ['{"BackendType":"vxlan"}', /PublicIP null is not an IPv4 address/],
      ['{"PublicIP":"10.0.0.1","BackendType":7}', /BackendType is not a string/],
      ['{"PublicIP":"10.0.0.1","BackendData":{"VtepMAC":"zz:zz"}}', /VtepMAC "zz:zz" is not a unicast MAC/],
      ['{"PublicIP":"10.0.0.1","BackendData":{"VtepMAC":"01:00:5e:00:00:01"}}', /not a unicast MAC/],
      ['{"PublicIP":"10.0.0.1","BackendData":{"VNI":-1}}', /VNI -1 is not a VNI/],
    ];
    for (const [text, reason] of cases) {
      const decoded = decodeLeaseValue(text);
      assert.ok(!decoded.ok, text);
      assert.match(decoded.reason, reason);
    }
  });
});
