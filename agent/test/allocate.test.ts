import assert from "node:assert/strict";
import { formatCidr, parseCidr, type Cidr } from "#lib/ipv4.js";
import { validateNetworkConfig } from "../src/config/network-config.js";
import { chooseSubnet, RANDOM_WINDOW } from "../src/lease/allocate.js";
import type { StoredLease } from "../src/lease/registry.js";

const config = validateNetworkConfig({ Network: "172.30.0.0/16", SubnetMax: "172.30.254.0" });
const cidr = (text: string): Cidr => parseCidr(text)!;

function lease(subnet: string, publicIp: string, reserved = false): StoredLease {
  return {
    subnet: cidr(subnet),
    attrs: { ok: true, value: { publicIp, backendType: "vxlan" } },
    leaseId: reserved ? undefined : "7",
    modRevision: "5",
  };
}

const first = (): number => 0;

describe("subnet choice", () => {
  it("reuses the lease naming our public IP", () => {
    const choice = chooseSubnet({
      config,
      leases: [lease("172.30.1.0/24", "10.0.0.1"), lease("172.30.7.0/24", "10.0.0.2")],
      publicIp: "10.0.0.2",
      preferred: undefined,
      random: first,
    });
    assert.ok(choice.kind === "reuse");
    assert.equal(formatCidr(choice.lease.subnet), "172.30.7.0/24");
    assert.equal(choice.reserved, false);
  });

  it("prefers a reservation for our IP over a TTL lease, even outside SubnetMin..Max", () => {
    const leases = [lease("172.30.7.0/24", "10.0.0.2"), lease("172.30.255.0/24", "10.0.0.2", true)];
    const choice = chooseSubnet({ config, leases, publicIp: "10.0.0.2", preferred: undefined, random: first });
    assert.ok(choice.kind === "reuse");
    assert.ok(choice.reserved);
    assert.equal(formatCidr(choice.lease.subnet), "172.30.255.0/24");
  });

  it("ignores a lease for our IP that no longer fits the network", () => {
    const choice = chooseSubnet({
      config,
      leases: [lease("10.9.0.0/24", "10.0.0.2")],
      publicIp: "10.0.0.2",
      preferred: undefined,
      random: first,
    });
    assert.deepEqual(choice, { kind: "create", subnet: cidr("172.30.1.0/24"), source: "random" });
  });

  it("takes the remembered subnet when it is free, not when it is taken or outside the pool", () => {
    const remembered = cidr("172.30.77.0/24");
    assert.deepEqual(chooseSubnet({ config, leases: [], publicIp: "10.0.0.2", preferred: remembered, random: first }), {
      kind: "create",
      subnet: remembered,
      source: "preferred",
    });
    const taken = chooseSubnet({
      config,
      leases: [lease("172.30.77.0/24", "10.0.0.9")],
      publicIp: "10.0.0.2",
      preferred: remembered,
      random: first,
    });
    assert.equal(taken.kind === "create" && taken.source, "random");
    const outside = chooseSubnet({
      config,
      leases: [],
      publicIp: "10.0.0.2",
      preferred: cidr("172.30.0.0/24"),
      random: first,
    });
    assert.equal(outside.kind === "create" && formatCidr(outside.subnet), "172.30.1.0/24");
  });

  it("never hands out a reservation or an unreadable key to another node", () => {
    const garbage: StoredLease = {
      subnet: cidr("172.30.2.0/24"),
      attrs: { ok: false, reason: "bad" },
      leaseId: undefined,
      modRevision: "1",
    };
    const choice = chooseSubnet({
      config,
      leases: [lease("172.30.1.0/24", "10.0.0.9", true), garbage],
      publicIp: "10.0.0.2",
      preferred: cidr("172.30.1.0/24"),
      random: first,
    });
    assert.equal(choice.kind === "create" && formatCidr(choice.subnet), "172.30.3.0/24");
  });

  it("picks at random among the first free subnets only", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const choice = chooseSubnet({
        config,
        leases: [],
        publicIp: "10.0.0.2",
        preferred: undefined,
        random: () => i / 200,
      });
      if (choice.kind === "create") seen.add(formatCidr(choice.subnet));
    }
    assert.equal(seen.size, RANDOM_WINDOW);
    assert.ok(
      seen.has("172.30.1.0/24") &&
        seen.has(`172.30.${RANDOM_WINDOW}.0/24`) &&
        !seen.has(`172.30.${RANDOM_WINDOW + 1}.0/24`),
    );
  });

  it("widens the random window after lost races", () => {
    const picks = new Set<string>();
    for (let i = 0; i < 400; i++) {
      const choice = chooseSubnet({
        config,
        leases: [],
        publicIp: "10.0.0.2",
        preferred: undefined,
        racesLost: 1,
        random: () => i / 400,
      });
      if (choice.kind === "create") picks.add(formatCidr(choice.subnet));
    }
    assert.equal(picks.size, 2 * RANDOM_WINDOW);
  });

  it("skips subnets excluded after a lost race", () => {
    const choice = chooseSubnet({
      config,
      leases: [],
      publicIp: "10.0.0.2",
      preferred: cidr("172.30.1.0/24"),
      exclude: new Set([cidr("172.30.1.0/24").ip]),
      random: first,
    });
    assert.equal(choice.kind === "create" && formatCidr(choice.subnet), "172.30.2.0/24");
  });

  it("treats a key of another length as blocking what it overlaps", () => {
    const wide: StoredLease = { ...lease("172.30.0.0/22", "10.0.0.9"), subnet: cidr("172.30.0.0/22") };
    const choice = chooseSubnet({ config, leases: [wide], publicIp: "10.0.0.2", preferred: undefined, random: first });
    assert.equal(choice.kind === "create" && formatCidr(choice.subnet), "172.30.4.0/24");
  });

  it("reports an exhausted pool with its size and how many are taken", () => {
    const small = validateNetworkConfig({ Network: "10.9.0.0/28" });
    const leases = [lease("10.9.0.4/30", "1.1.1.1"), lease("10.9.0.8/30", "1.1.1.2"), lease("10.9.0.12/30", "1.1.1.3")];
    assert.deepEqual(
      chooseSubnet({ config: small, leases, publicIp: "10.0.0.2", preferred: undefined, random: first }),
      { kind: "exhausted", poolSize: 3, taken: 3 },
    );
  });
});
