import assert from "node:assert/strict";
import { parseResolvConf, searchCandidates, upstreamsFrom } from "../../src/dns/resolv-conf.js";

describe("resolv.conf parser", () => {
  it("reads nameservers (first three), the last search line, ndots and the forwarder's options", () => {
    const conf = parseResolvConf(
      [
        "# generated",
        "domain example.org",
        "nameserver 10.0.0.2",
        "nameserver fe80::1%eth0 ; link-local with a zone",
        "nameserver not-an-ip",
        "nameserver 10.0.0.3",
        "nameserver 10.0.0.4",
        "search default.svc.cluster.local svc.cluster.local. cluster.local",
        "options ndots:5 timeout:2 attempts:3 rotate edns0",
        "sortlist 10.0.0.0",
      ].join("\n"),
    );
    assert.deepEqual(conf.nameservers, [
      { address: "10.0.0.2", port: 53 },
      { address: "fe80::1%eth0", port: 53 },
      { address: "10.0.0.3", port: 53 },
    ]);
    assert.deepEqual(conf.search, ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"]);
    assert.equal(conf.ndots, 5);
    assert.equal(conf.timeoutSeconds, 2);
    assert.equal(conf.attempts, 3);
    assert.equal(conf.rotate, true);
    assert.deepEqual(conf.warnings, [
      'line 5: nameserver "not-an-ip" is not an IP address',
      "line 7: more than 3 nameservers; 10.0.0.4 is ignored",
      'line 10: unknown keyword "sortlist"',
    ]);
  });

  it("defaults: no nameserver, no search, ndots 1; ndots is capped at 15 and a bad value ignored", () => {
    const empty = parseResolvConf("");
    assert.deepEqual(
      [empty.nameservers, empty.search, empty.ndots, empty.timeoutSeconds, empty.attempts],
      [[], [], 1, 5, 2],
    );
    assert.equal(parseResolvConf("options ndots:40").ndots, 15);
    assert.equal(parseResolvConf("options ndots:x").ndots, 1);
    assert.deepEqual(parseResolvConf("search a.b\ndomain c.d").search, ["c.d"]);
  });

  it("search candidates follow glibc: fewer dots than ndots → suffixes first; enough dots or a trailing dot → as is first/only", () => {
    const conf = { search: ["ns.svc.cluster.local", "svc.cluster.local", "cluster.local"], ndots: 5 };
    assert.deepEqual(searchCandidates("nginx", conf), [
      "nginx.ns.svc.cluster.local",
      "nginx.svc.cluster.local",
      "nginx.cluster.local",
      "nginx",
    ]);
    assert.deepEqual(searchCandidates("a.b.c.d.e.f", conf), [
      "a.b.c.d.e.f",
      "a.b.c.d.e.f.ns.svc.cluster.local",
      "a.b.c.d.e.f.svc.cluster.local",
      "a.b.c.d.e.f.cluster.local",
    ]);
    assert.deepEqual(searchCandidates("example.com.", conf), ["example.com"]);
    assert.deepEqual(searchCandidates("example.com", { search: [], ndots: 1 }), ["example.com"]);
  });

  it("drops our own listeners from the upstreams (forwarding to ourselves would loop)", () => {
    const conf = parseResolvConf("nameserver 169.254.20.10\nnameserver 10.0.0.2\n");
    assert.deepEqual(upstreamsFrom(conf, [{ address: "169.254.20.10", port: 53 }]), [
      { address: "10.0.0.2", port: 53 },
    ]);
    assert.deepEqual(upstreamsFrom(conf, [{ address: "169.254.20.10", port: 5353 }]).length, 2);
  });
});
