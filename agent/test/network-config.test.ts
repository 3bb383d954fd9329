import assert from "node:assert/strict";
import { InvalidConfigError } from "#lib/errors.js";
import { formatIpv4 } from "#lib/ipv4.js";
import { parseIpv6 } from "#lib/ipv6.js";
import {
  formatNetworkConfig,
  parseNetworkConfig,
  poolSize,
  validateNetworkConfig,
} from "../src/config/network-config.js";

function rejects(raw: unknown, field: string, pattern: RegExp): void {
  assert.throws(
    () => validateNetworkConfig(raw),
    (error: unknown) => {
      assert.ok(error instanceof InvalidConfigError, `expected InvalidConfigError, got ${String(error)}`);
      assert.equal(error.code, "INVALID_CONFIG");
      assert.equal(error.field, field);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

describe("network config", () => {
  it("fills in flannel's defaults for a /16", () => {
    const config = parseNetworkConfig('{"Network":"172.30.0.0/16"}');
    assert.equal(config.subnetLen, 24);
    assert.equal(formatIpv4(config.subnetMin), "172.30.1.0");
    assert.equal(formatIpv4(config.subnetMax), "172.30.255.0");
    assert.deepEqual(config.backend, { type: "vxlan", vni: 1, port: 8472, directRouting: false });
    assert.equal(poolSize(config), 255);
  });

  it("uses prefix+2 for networks smaller than /22 and 24 up to /22", () => {
    assert.equal(validateNetworkConfig({ Network: "10.1.0.0/22" }).subnetLen, 24);
    assert.equal(validateNetworkConfig({ Network: "10.1.0.0/25" }).subnetLen, 27);
    assert.equal(validateNetworkConfig({ Network: "10.1.0.16/28" }).subnetLen, 30);
  });

  it("round-trips through flannel's JSON with every default written out", () => {
    const text = formatNetworkConfig(
      parseNetworkConfig('{"Network":"10.5.0.0/16","SubnetLen":26,"Backend":{"Type":"host-gw"}}'),
    );
    assert.deepEqual(JSON.parse(text), {
      Network: "10.5.0.0/16",
      SubnetLen: 26,
      SubnetMin: "10.5.0.64",
      SubnetMax: "10.5.255.192",
      Backend: { Type: "host-gw" },
    });
    assert.deepEqual(parseNetworkConfig(text), parseNetworkConfig(text));
  });

  it("fills in flannel's IPv6 defaults: /64 subnets, the first skipped, up to the last", () => {
    const config = validateNetworkConfig({ Network: "172.30.0.0/16", EnableIPv6: true, IPv6Network: "fd30::/56" });
    const v6 = config.ipv6 ?? assert.fail("no IPv6 pool");
    assert.equal(v6.subnetLen, 64);
    assert.equal(v6.subnetMin, parseIpv6("fd30:0:0:1::"));
    assert.equal(v6.subnetMax, parseIpv6("fd30:0:0:ff::"));
    assert.equal(
      validateNetworkConfig({ Network: "10.0.0.0/16", EnableIPv6: true, IPv6Network: "fd30::/62" }).ipv6?.subnetLen,
      64,
    );
    assert.equal(
      validateNetworkConfig({ Network: "10.0.0.0/16", EnableIPv6: true, IPv6Network: "fd30::/96" }).ipv6?.subnetLen,
      98,
    );
    assert.equal(config.enableIPv4, true);
    assert.equal(
      validateNetworkConfig({ Network: "10.0.0.0/16", IPv6Network: "fd30::/56" }).ipv6,
      undefined,
      "only with EnableIPv6",
    );
    assert.equal(validateNetworkConfig({ Network: "10.0.0.0/16", EnableIPv6: false }).ipv6, undefined);
  });

  it("round-trips a dual-stack config through flannel's JSON, and a v4 one without any IPv6 field", () => {
    const text = formatNetworkConfig(
      validateNetworkConfig({
        Network: "172.30.0.0/16",
        EnableIPv4: true,
        EnableIPv6: true,
        IPv6Network: "fd30:0000::/56",
        IPv6SubnetMin: "fd30:0:0:10::",
      }),
    );
    assert.deepEqual(JSON.parse(text), {
      Network: "172.30.0.0/16",
      SubnetLen: 24,
      SubnetMin: "172.30.1.0",
      SubnetMax: "172.30.255.0",
      EnableIPv6: true,
      IPv6Network: "fd30::/56",
      IPv6SubnetLen: 64,
      IPv6SubnetMin: "fd30:0:0:10::",
      IPv6SubnetMax: "fd30:0:0:ff::",
      Backend: { Type: "vxlan", VNI: 1, Port: 8472, DirectRouting: false },
    });
    assert.deepEqual(parseNetworkConfig(text), parseNetworkConfig(text));
    assert.ok(!formatNetworkConfig(parseNetworkConfig('{"Network":"10.0.0.0/16"}')).includes("IPv6"));
  });

  it("takes an IPv6-only network (EnableIPv4 false): no IPv4 pool, and flannel's JSON without the IPv4 fields", () => {
    const config = validateNetworkConfig({
      EnableIPv4: false,
      EnableIPv6: true,
      IPv6Network: "fd30::/56",
      Network: "not looked at",
    });
    assert.equal(config.enableIPv4, false);
    assert.deepEqual(config.network, { ip: 0, prefixLen: 0 });
    assert.equal(config.ipv6?.subnetLen, 64);
    assert.deepEqual(JSON.parse(formatNetworkConfig(config)), {
      EnableIPv4: false,
      EnableIPv6: true,
      IPv6Network: "fd30::/56",
      IPv6SubnetLen: 64,
      IPv6SubnetMin: "fd30:0:0:1::",
      IPv6SubnetMax: "fd30:0:0:ff::",
      Backend: { Type: "vxlan", VNI: 1, Port: 8472, DirectRouting: false },
    });
    assert.deepEqual(parseNetworkConfig(formatNetworkConfig(config)), config);
  });

  it("accepts flannel's VNI/Port 0 as the defaults and keeps explicit values", () => {
    assert.deepEqual(
      validateNetworkConfig({ Network: "10.0.0.0/8", Backend: { Type: "vxlan", VNI: 0, Port: 0 } }).backend,
      {
        type: "vxlan",
        vni: 1,
        port: 8472,
        directRouting: false,
      },
    );
    assert.deepEqual(
      validateNetworkConfig({
        Network: "10.0.0.0/8",
        Backend: { Type: "vxlan", VNI: 42, Port: 4789, DirectRouting: true },
      }).backend,
      {
        type: "vxlan",
        vni: 42,
        port: 4789,
        directRouting: true,
      },
    );
  });

  describe("rejects, naming field, value and what is allowed", () => {
    it("malformed JSON", () => {
      assert.throws(() => parseNetworkConfig("{Network:"), /network config "\{Network:" is invalid: must be JSON/);
    });
    it("a non-object", () => {
      rejects([1], "network config", /must be a JSON object/);
    });
    it("a missing Network", () => {
      rejects({}, "Network", /\(missing\) is invalid: is required/);
    });
    it("a Network that does not parse", () => {
      rejects({ Network: "172.30.0.0/33" }, "Network", /"172\.30\.0\.0\/33" is invalid: must be an IPv4 CIDR/);
    });
    it("a Network of the wrong type", () => {
      rejects({ Network: 17 }, "Network", /17 is invalid/);
    });
    it("a Network with host bits", () => {
      rejects({ Network: "172.30.5.0/16" }, "Network", /network address is 172\.30\.0\.0\/16/);
    });
    it("a Network smaller than /28", () => {
      rejects({ Network: "10.0.0.0/29" }, "Network", /\/28 or shorter/);
    });
    it("SubnetLen above 30", () => {
      rejects({ Network: "10.0.0.0/16", SubnetLen: 31 }, "SubnetLen", /31 is invalid: must be between 18 and 30/);
    });
    it("SubnetLen too close to the Network", () => {
      rejects({ Network: "10.0.0.0/16", SubnetLen: 17 }, "SubnetLen", /must be between 18 and 30/);
    });
    it("SubnetLen of the wrong type", () => {
      rejects({ Network: "10.0.0.0/16", SubnetLen: "24" }, "SubnetLen", /"24" is invalid: must be an integer/);
    });
    it("SubnetMin off the boundary", () => {
      rejects({ Network: "10.0.0.0/16", SubnetMin: "10.0.1.128" }, "SubnetMin", /\/24 \(SubnetLen\) boundary/);
    });
    it("SubnetMax outside the Network", () => {
      rejects({ Network: "10.0.0.0/16", SubnetMax: "10.1.0.0" }, "SubnetMax", /inside Network 10\.0\.0\.0\/16/);
    });
    it("SubnetMin that is not an address", () => {
      rejects({ Network: "10.0.0.0/16", SubnetMin: "ten" }, "SubnetMin", /must be an IPv4 address/);
    });
    it("SubnetMin above SubnetMax", () => {
      rejects(
        { Network: "10.0.0.0/16", SubnetMin: "10.0.9.0", SubnetMax: "10.0.3.0" },
        "SubnetMin",
        /not be above SubnetMax 10\.0\.3\.0/,
      );
    });
    it("an unknown backend", () => {
      rejects(
        { Network: "10.0.0.0/16", Backend: { Type: "udp" } },
        "Backend.Type",
        /"udp" is invalid: must be one of vxlan, host-gw/,
      );
    });
    it("a VNI out of range", () => {
      rejects({ Network: "10.0.0.0/16", Backend: { VNI: 16777216 } }, "Backend.VNI", /between 0 and 16777215/);
    });
    it("a port out of range", () => {
      rejects({ Network: "10.0.0.0/16", Backend: { Port: 70000 } }, "Backend.Port", /between 0 and 65535/);
    });
    it("DirectRouting that is not a boolean", () => {
      rejects(
        { Network: "10.0.0.0/16", Backend: { DirectRouting: "yes" } },
        "Backend.DirectRouting",
        /must be true or false/,
      );
    });
    it("an unknown key (a typo)", () => {
      rejects({ Network: "10.0.0.0/16", SubnetLength: 24 }, "SubnetLength", /not a known field/);
    });
    it("IPv6 fields that are not what flannel allows", () => {
      const v6 = (extra: Record<string, unknown>): Record<string, unknown> => ({
        Network: "10.0.0.0/16",
        EnableIPv6: true,
        IPv6Network: "fd30::/56",
        ...extra,
      });
      rejects(v6({ IPv6Network: undefined }), "IPv6Network", /required with EnableIPv6.*fd30::\/56/);
      rejects(v6({ IPv6Network: "10.0.0.0/16" }), "IPv6Network", /"10\.0\.0\.0\/16" is invalid: must be an IPv6 CIDR/);
      rejects(v6({ IPv6Network: "fd30::1/56" }), "IPv6Network", /host bits set; the network address is fd30::\/56/);
      rejects(v6({ IPv6Network: "fd30::/125" }), "IPv6Network", /\/124 or shorter/);
      rejects(v6({ IPv6SubnetLen: 57 }), "IPv6SubnetLen", /between 58 and 126 for IPv6Network fd30::\/56/);
      rejects(v6({ IPv6SubnetLen: 127 }), "IPv6SubnetLen", /between 58 and 126/);
      rejects(v6({ IPv6SubnetMin: "fd31::" }), "IPv6SubnetMin", /inside IPv6Network fd30::\/56/);
      rejects(v6({ IPv6SubnetMin: "fd30:0:0:1::1" }), "IPv6SubnetMin", /on a \/64 \(IPv6SubnetLen\) boundary/);
      rejects(v6({ IPv6SubnetMax: "nope" }), "IPv6SubnetMax", /must be an IPv6 address/);
      rejects(
        v6({ IPv6SubnetMin: "fd30:0:0:9::", IPv6SubnetMax: "fd30:0:0:3::" }),
        "IPv6SubnetMin",
        /"fd30:0:0:9::" is invalid: must not be above IPv6SubnetMax fd30:0:0:3::/,
      );
      rejects(v6({ EnableIPv6: "yes" }), "EnableIPv6", /must be true or false/);
    });
    it("no family at all", () => {
      rejects({ EnableIPv4: false, Network: "10.0.0.0/16" }, "EnableIPv4", /leaves no network: set EnableIPv6 true/);
    });
  });
});
