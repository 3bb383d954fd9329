import assert from "node:assert/strict";
import { parseCidr } from "../../lib/src/ipv4.js";
import {
  decodeLeaseValue,
  encodeLeaseValue,
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
