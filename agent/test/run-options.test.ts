// `run`'s options validated in one place (config/run-options.ts): the defaults give the documented values, "" and 0
// turn the CNI service and the HTTP endpoint off, and every bad value is refused naming its flag (exit 2).
import assert from "node:assert/strict";
import { InvalidArgumentError } from "#lib/errors.js";
import { DEFAULTS } from "../src/config/agent-options.js";
import { parseRunOptions, type RawRunOptions } from "../src/config/run-options.js";

const defaults: RawRunOptions = {
  subnetFile: DEFAULTS.subnetFile,
  healthzIp: DEFAULTS.healthzIp,
  healthzPort: DEFAULTS.healthzPort,
  subnetLeaseTtl: DEFAULTS.subnetLeaseTtl,
  ipMasq: true,
  iptablesResync: DEFAULTS.iptablesResync,
  resyncInterval: DEFAULTS.resyncInterval,
  storeResetGrace: DEFAULTS.storeResetGrace,
  cniSocket: DEFAULTS.cniSocket,
  services: true,
  podRecordDir: DEFAULTS.podRecordDir,
  firewallBackend: "auto",
  logLevel: "info",
  logFormat: "json",
};

const refused =
  (flag: string, pattern: RegExp) =>
  (error: unknown): boolean =>
    error instanceof InvalidArgumentError && error.field === flag && pattern.test(error.message);

describe("run options (one typed object, validated before anything starts)", () => {
  it("the defaults are the documented values", () => {
    const options = parseRunOptions(defaults);
    assert.equal(options.leaseTtlSeconds, 86_400);
    assert.deepEqual(
      [options.masqResyncMs, options.resyncIntervalMs, options.storeResetGraceMs],
      [1000, 10_000, 60_000],
    );
    assert.deepEqual(options.healthz, { ip: "127.0.0.1", port: 9808 });
    assert.equal(options.cniSocket, "/run/trellis/cni.sock");
    assert.equal(options.vxlanDevice, undefined);
    assert.equal(options.publicIpv6, undefined);
    assert.deepEqual(options.etcd.connection.endpoints, ["http://127.0.0.1:2379"]);
    assert.equal(options.etcd.prefix, "/coreos.com/network");
    assert.equal(options.etcd.connection.retry, true, "the daemon retries etcd requests");
    assert.deepEqual(
      [options.services, options.podRecordDir, options.registryPrefix],
      [true, "/run/trellis/pods", "/trellis"],
    );
  });

  it('"" turns the CNI service off and port 0 the HTTP endpoint', () => {
    const options = parseRunOptions({ ...defaults, cniSocket: "", healthzPort: "0" });
    assert.equal(options.cniSocket, undefined);
    assert.equal(options.healthz, undefined);
  });

  it("refuses each bad value naming its flag", () => {
    const cases: [Partial<RawRunOptions>, string, RegExp][] = [
      [{ subnetLeaseTtl: "1s" }, "--subnet-lease-ttl", /must be between 2s and/],
      [{ iptablesResync: "soon" }, "--iptables-resync", /must be a duration/],
      [{ resyncInterval: "10ms" }, "--resync-interval", /must be between 1s/],
      [{ storeResetGrace: "x" }, "--store-reset-grace", /must be a duration/],
      [{ healthzPort: "65536" }, "--healthz-port", /from 0 \(off\) to 65535/],
      [{ healthzIp: "localhost" }, "--healthz-ip", /must be an IPv4 address/],
      [{ vxlanDevice: "flannel@1" }, "--vxlan-device", /1-15 letters, digits/],
      [{ publicIpv6: "10.0.0.1" }, "--public-ipv6", /must be a global IPv6 address/],
      [{ publicIpv6: "fe80::1" }, "--public-ipv6", /not ::1, link-local or multicast/],
      [{ cniSocket: "relative.sock" }, "--cni-socket", /an absolute path of at most 107 bytes/],
      [{ etcdEndpoints: "etcd:2379" }, "--etcd-endpoints", /must use http:\/\/ or https:\/\//],
      [{ etcdPassword: "p" }, "--etcd-username", /required when --etcd-password is given/],
      [{ podRecordDir: "pods" }, "--pod-record-dir", /must be an absolute path/],
      [{ registryPrefix: "trellis" }, "--registry-prefix", /must be an absolute key path/],
    ];
    for (const [change, flag, pattern] of cases)
      assert.throws(() => parseRunOptions({ ...defaults, ...change }), refused(flag, pattern), flag);
  });
});
