// Which dual-stack leases become peers: the IPv6 half checked like the IPv4 one (inside IPv6Network, IPv6SubnetLen
// long, no overlap, no VTEP MAC of either device twice, the older lease winning), and not looked at on a network
// without IPv6; on an IPv6-only network the placeholder IPv4 half (0.0.0.0/0) is not checked.
import assert from "node:assert/strict";
import { parseCidr } from "#lib/ipv4.js";
import { parseCidr6 } from "#lib/ipv6.js";
import type { LeaseAttrs } from "../src/lease/lease-codec.js";
import { admitLeases, type LeaseShape } from "../src/lease/peer-validation.js";
import type { StoredLease } from "../src/lease/registry.js";

const DUAL: LeaseShape = {
  network: parseCidr("172.30.0.0/16")!,
  subnetLen: 24,
  ipv6: { network: parseCidr6("fd30::/56")!, subnetLen: 64 },
};
const V4: LeaseShape = { network: DUAL.network, subnetLen: 24 };
const V6_ONLY: LeaseShape = { ...DUAL, network: parseCidr("0.0.0.0/0")!, subnetLen: 0, enableIPv4: false };

let revision = 10;
function lease(v4: string, v6: string | undefined, attrs: Partial<LeaseAttrs> = {}): StoredLease {
  revision += 1;
  return {
    subnet: parseCidr(v4)!,
    ...(v6 === undefined ? {} : { subnet6: parseCidr6(v6)! }),
    attrs: { ok: true, value: { publicIp: `10.42.0.${revision}`, backendType: "vxlan", ...attrs } },
    leaseId: "1",
    modRevision: String(revision),
  };
}

const own = {
  publicIp: "10.42.0.1",
  subnet: parseCidr("172.30.1.0/24")!,
  subnet6: parseCidr6("fd30:0:0:1::/64")!,
  vtepMac6: "02:00:00:00:06:01",
};
const reasons = (rejected: readonly { reason: string }[]): string[] => rejected.map((r) => r.reason);

describe("peer validation: the IPv6 half of a lease", () => {
  beforeEach(() => {
    revision = 10; // public IPs 10.42.0.11, .12, … in each test's order
  });

  it("admits dual-stack and IPv4-only leases whose IPv6 subnet fits", () => {
    const { peers, rejected } = admitLeases(
      [lease("172.30.2.0/24", "fd30:0:0:2::/64"), lease("172.30.3.0/24", undefined)],
      [DUAL],
      own,
    );
    assert.deepEqual(rejected, []);
    assert.deepEqual(
      peers.map((p) => p.subnet6?.prefixLen ?? null),
      [64, null],
    );
  });

  it("rejects an IPv6 subnet outside IPv6Network, of another length, or overlapping ours or an older one", () => {
    const older = lease("172.30.2.0/24", "fd30:0:0:2::/64");
    const { peers, rejected } = admitLeases(
      [
        lease("172.30.3.0/24", "fd99:0:0:3::/64"),
        lease("172.30.4.0/24", "fd30:0:0:4::/80"),
        lease("172.30.5.0/24", "fd30:0:0:1::/64"),
        older,
        lease("172.30.6.0/24", "fd30:0:0:2::/64"),
        lease("172.30.7.0/24", "::/0"),
      ],
      [DUAL],
      own,
    );
    assert.deepEqual(
      peers.map((p) => p.subnet.ip),
      [older.subnet.ip],
    );
    assert.deepEqual(reasons(rejected), [
      "fd99:0:0:3::/64 is not inside IPv6Network fd30::/56 with IPv6SubnetLen 64",
      "fd30:0:0:4::/80 is a /80; IPv6 leases are /64",
      "::/0 is not inside IPv6Network fd30::/56 with IPv6SubnetLen 64",
      "fd30:0:0:1::/64 overlaps fd30:0:0:1::/64 of this node, which was there first",
      "fd30:0:0:2::/64 overlaps fd30:0:0:2::/64 of 172.30.2.0/24 (10.42.0.11), which was there first",
    ]);
    assert.deepEqual(
      rejected.map((r) => r.kind),
      ["outside-network", "wrong-length", "outside-network", "overlap", "overlap"],
    );
    assert.ok(
      rejected.every((r) => r.subnet6 !== undefined),
      "a rejected lease is named by both halves",
    );
  });

  it("rejects a BackendV6Data.VtepMAC already used by this node or an older lease", () => {
    const { rejected } = admitLeases(
      [
        lease("172.30.2.0/24", "fd30:0:0:2::/64", { v6: { vtepMac: "02:00:00:00:06:01" } }),
        lease("172.30.3.0/24", "fd30:0:0:3::/64", { v6: { vtepMac: "02:00:00:00:06:03" } }),
        lease("172.30.4.0/24", "fd30:0:0:4::/64", { v6: { vtepMac: "02:00:00:00:06:03" } }),
      ],
      [DUAL],
      own,
    );
    assert.deepEqual(reasons(rejected), [
      "BackendV6Data.VtepMAC 02:00:00:00:06:01 is already used by this node, which was there first",
      "BackendV6Data.VtepMAC 02:00:00:00:06:03 is already used by 172.30.3.0/24 (10.42.0.12), which was there first",
    ]);
  });

  it("on a network without IPv6, the IPv6 half is not looked at", () => {
    const { peers, rejected } = admitLeases([lease("172.30.2.0/24", "fd99::/64")], [V4], own);
    assert.deepEqual([peers.length, rejected], [1, []]);
  });

  it("on an IPv6-only network, leases are told apart by their IPv6 half alone", () => {
    const zero = "0.0.0.0/0";
    const { peers, rejected } = admitLeases(
      [
        lease(zero, "fd30:0:0:1::/64"), // our own: by its IPv6 subnet (all IPv4 halves are the same)
        lease(zero, "fd30:0:0:2::/64"),
        lease(zero, "fd30:0:0:3::/64"),
        lease(zero, "fd30:0:0:3::/64"),
      ],
      [V6_ONLY],
      { ...own, subnet: parseCidr(zero)! },
    );
    assert.deepEqual(
      peers.map((p) => p.subnet6?.ip.toString(16)),
      ["fd300000000000020000000000000000", "fd300000000000030000000000000000"],
    );
    assert.deepEqual(reasons(rejected), [
      "fd30:0:0:3::/64 overlaps fd30:0:0:3::/64 of fd30:0:0:3::/64 (10.42.0.13), which was there first",
    ]);
  });
});
