// `trellis-agent status` and /metrics on a dual-stack network: both subnets of each node (table and JSON), the local
// agent's view merged per family, an IPv4-only listing as before; the repair and programmed-subnet metrics by family.
import assert from "node:assert/strict";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { AgentMetrics } from "../src/observability/metrics.js";
import { formatLeaseJson, formatLeaseTable, withLocalView, type LeaseRow } from "../src/status/subnet-listing.js";

const row = (subnet: string, subnet6: string | null, extra: Partial<LeaseRow> = {}): LeaseRow => ({
  subnet,
  subnet6,
  publicIp: "10.42.0.12",
  publicIpv6: subnet6 === null ? null : "fd00:42::12",
  backend: "vxlan",
  vni: 1,
  vtepMac: "02:00:00:00:00:12",
  vtepMac6: subnet6 === null ? null : "02:00:00:00:06:12",
  reserved: true,
  ttlSeconds: null,
  expiresAt: null,
  self: false,
  invalid: null,
  programmed: null,
  skipped: null,
  programmed6: null,
  skipped6: null,
  ...extra,
});
const local = {
  url: "http://127.0.0.1:9808",
  reachable: true,
  ready: true,
  reasons: [],
  warnings: [],
  services: null,
} as const;

describe("status on a dual-stack network", () => {
  it("merges the local agent's view of each family's subnet, an older agent's (no family) as IPv4", () => {
    const rows = withLocalView(
      [row("172.30.2.0/24", "fd30:0:0:2::/64"), row("172.30.3.0/24", "fd30:0:0:3::/64"), row("172.30.4.0/24", null)],
      [
        { family: 4, subnet: "172.30.2.0/24", programmed: true, skipped: null },
        { family: 6, subnet: "fd30:0:0:2::/64", programmed: false, skipped: "lease has no BackendV6Data.VtepMAC" },
        { family: 4, subnet: "172.30.3.0/24", programmed: false, skipped: null },
        { family: 6, subnet: "fd30:0:0:3::/64", programmed: true, skipped: null },
        { subnet: "172.30.4.0/24", programmed: true, skipped: null },
      ],
    );
    assert.deepEqual(
      rows.map((r) => [r.programmed, r.skipped, r.programmed6, r.skipped6]),
      [
        [true, null, false, "lease has no BackendV6Data.VtepMAC"],
        [false, null, true, null],
        [true, null, null, null],
      ],
    );
    const table = formatLeaseTable(rows, local);
    const [header, first, second, third] = table.split("\n").slice(1);
    assert.match(
      header ?? "",
      /^\s+SUBNET\s+IPV6 SUBNET\s+PUBLIC IP\s+PUBLIC IPV6\s+BACKEND\s+VTEP MAC\s+EXPIRES\s+ROUTE$/,
    );
    assert.match(
      first ?? "",
      /172\.30\.2\.0\/24\s+fd30:0:0:2::\/64\s+10\.42\.0\.12\s+fd00:42::12 .* programmed; IPv6: skipped: lease has no BackendV6Data\.VtepMAC$/,
    );
    assert.match(second ?? "", /MISSING; IPv6: programmed$/);
    assert.match(third ?? "", /172\.30\.4\.0\/24\s+-\s+10\.42\.0\.12\s+-\s+.*\s+programmed$/);
    const json = JSON.parse(formatLeaseJson(rows, local)) as { leases: LeaseRow[] };
    assert.deepEqual(
      json.leases.map((l) => [l.subnet, l.subnet6, l.publicIpv6, l.vtepMac6]),
      [
        ["172.30.2.0/24", "fd30:0:0:2::/64", "fd00:42::12", "02:00:00:00:06:12"],
        ["172.30.3.0/24", "fd30:0:0:3::/64", "fd00:42::12", "02:00:00:00:06:12"],
        ["172.30.4.0/24", null, null, null],
      ],
    );
  });

  it("an IPv4-only listing has no IPv6 columns", () => {
    const table = formatLeaseTable([row("172.30.4.0/24", null, { programmed: true })], local);
    assert.match(table.split("\n")[1] ?? "", /^\s+SUBNET\s+PUBLIC IP\s+BACKEND\s+VTEP MAC\s+EXPIRES\s+ROUTE$/);
    assert.doesNotMatch(table, /IPv6|IPV6/);
  });

  it("an IPv6-only listing has no IPv4 columns (every key's IPv4 half is empty), and ROUTE is the IPv6 one", () => {
    const table = formatLeaseTable(
      [row("0.0.0.0/0", "fd30:0:0:4::/64", { programmed6: true }), row("0.0.0.0/0", "fd30:0:0:5::/64", { self: true })],
      local,
    );
    const [header, peer, own] = table.split("\n").slice(1);
    assert.match(header ?? "", /^\s+IPV6 SUBNET\s+PUBLIC IP\s+PUBLIC IPV6\s+BACKEND\s+EXPIRES\s+ROUTE$/);
    assert.match(peer ?? "", /^\s+fd30:0:0:4::\/64\s+10\.42\.0\.12\s+fd00:42::12\s+vxlan\s+reserved\s+programmed$/);
    assert.match(own ?? "", /^\*\s+fd30:0:0:5::\/64 .*\(this node\)$/);
    assert.doesNotMatch(table, /0\.0\.0\.0/);
  });
});

describe("metrics by address family", () => {
  it("counts repairs and stale removals by kind and family, and programmed peer subnets by family", async () => {
    const metrics = new AgentMetrics("test");
    metrics.attach({
      leaseState: () => "held",
      leaseSecondsToExpiry: () => undefined,
      peersKnown: () => 2,
      peersProgrammed: () => 2,
      subnetsProgrammed: () =>
        new Map([
          [4, 2],
          [6, 1],
        ]),
      peersRejected: () => new Map(),
      ready: () => true,
      configDrift: () => undefined,
    });
    const route = { kind: "route", key: "fd30:0:0:2::/64", family: 6 } as const;
    metrics.record({ type: "dataplane", event: { type: "repaired", ...route } });
    metrics.record({ type: "dataplane", event: { type: "repaired", ...route } });
    metrics.record({ type: "dataplane", event: { type: "repaired", kind: "route", key: "172.30.2.0/24", family: 4 } });
    metrics.record({
      type: "dataplane",
      event: {
        type: "device",
        action: "created",
        name: "flannel-v6.1",
        family: 6,
        reason: "device was deleted",
        repair: true,
      },
    });
    metrics.record({
      type: "dataplane",
      event: { type: "stale-removed", kind: "fdb", key: "02:00:00:00:06:09", family: 6 },
    });
    const families = parsePrometheusTextFormat(await metrics.metrics());
    const series = (name: string): string[] =>
      (families.find((f) => f.name === name)?.metrics ?? [])
        .map(
          (m) =>
            `${Object.entries(m.labels ?? {})
              .map(([k, v]) => `${k}=${v}`)
              .join(",")} ${m.value ?? ""}`,
        )
        .sort();
    assert.deepEqual(series("trellis_repairs_total"), [
      "kind=device,family=6 1",
      "kind=route,family=4 1",
      "kind=route,family=6 2",
    ]);
    assert.deepEqual(series("trellis_stale_entries_removed_total"), ["kind=fdb,family=6 1"]);
    assert.deepEqual(series("trellis_peer_subnets_programmed"), ["family=4 2", "family=6 1"]);
    assert.deepEqual(series("trellis_peers_programmed"), [" 2"]);
  });
});
