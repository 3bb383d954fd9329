import assert from "node:assert/strict";
import type { LinkInfo } from "#lib/netlink/kernel.js";
import { deviceVerdict, type VxlanDevice } from "../src/dataplane/backends/vxlan.js";
import type { DesiredState } from "../src/dataplane/desired.js";
import { TRELLIS_ROUTE_PROTOCOL } from "../src/dataplane/marks.js";
import { planChanges, planSize, type ActualState } from "../src/dataplane/plan.js";

const want: VxlanDevice = {
  name: "flannel.1",
  vni: 1,
  port: 8472,
  local: "10.42.0.11",
  underlayIndex: 2,
  mtu: 1450,
  mac: "02:00:00:00:00:0b",
  address: "172.30.5.0/32",
};
const have: LinkInfo = {
  index: 7,
  name: "flannel.1",
  kind: "vxlan",
  mtu: 1450,
  mac: "02:00:00:00:00:0b",
  up: true,
  vxlan: { vni: 1, port: 8472, local: "10.42.0.11", underlayIndex: 2, learning: false },
};

describe("dataplane plan", () => {
  it("keeps a device that matches, so a restart does not flap it", () => {
    assert.deepEqual(deviceVerdict(want, have), { action: "keep" });
    assert.deepEqual(deviceVerdict(want, undefined), { action: "create" });
  });

  it("adjusts MTU, MAC and link state in place", () => {
    assert.deepEqual(deviceVerdict(want, { ...have, mtu: 1500, up: false }), {
      action: "update",
      changes: { mtu: 1450, up: true },
      reason: "mtu 1500 → 1450, down → up",
    });
  });

  it("re-creates a device whose VNI or port differ (the kernel cannot change them in place)", () => {
    assert.deepEqual(deviceVerdict(want, { ...have, vxlan: { ...have.vxlan!, vni: 2, learning: true } }), {
      action: "recreate",
      reason: "VNI 2 → 1",
    });
    assert.deepEqual(deviceVerdict(want, { ...have, vxlan: { ...have.vxlan!, port: 4789 } }), {
      action: "recreate",
      reason: "port 4789 → 8472",
    });
  });

  it("changes learning, local and the underlay in place, without re-creating the device", () => {
    assert.deepEqual(deviceVerdict(want, { ...have, vxlan: { ...have.vxlan!, learning: true } }), {
      action: "update",
      changes: { vxlan: { learning: false } },
      reason: "learning on → off",
    });
    assert.deepEqual(
      deviceVerdict(want, { ...have, vxlan: { ...have.vxlan!, local: "10.42.0.99", underlayIndex: 3 } }),
      {
        action: "update",
        changes: { vxlan: { local: "10.42.0.11", underlayIndex: 2 } },
        reason: "local 10.42.0.99 → 10.42.0.11, underlay ifindex 3 → 2",
      },
    );
  });

  it("calls a link of another kind with the device's name foreign, never to be deleted", () => {
    assert.deepEqual(deviceVerdict(want, { index: 3, name: "flannel.1", kind: "dummy", mtu: 1500, up: true }), {
      action: "foreign",
      kind: "dummy",
    });
    assert.deepEqual(deviceVerdict(want, { index: 2, name: "eth0", mtu: 1500, up: true }), {
      action: "foreign",
      kind: "physical",
    });
    assert.equal(deviceVerdict(want, { ...have, kind: "bridge", vxlan: undefined as never }).action, "foreign");
  });

  it("plans exactly the difference, including stale entries to remove", () => {
    const desired: DesiredState = {
      family: 4,
      device: want,
      address: want.address,
      routes: new Map([
        [
          "172.30.9.0/24",
          {
            dst: "172.30.9.0",
            prefixLen: 24,
            gateway: "172.30.9.0",
            oif: 7,
            onlink: true,
            protocol: TRELLIS_ROUTE_PROTOCOL,
          },
        ],
      ]),
      neighbors: new Map([["172.30.9.0", { index: 7, ip: "172.30.9.0", mac: "02:00:00:00:00:0c", permanent: true }]]),
      fdb: new Map([["02:00:00:00:00:0c", { index: 7, mac: "02:00:00:00:00:0c", dst: "10.42.0.12" }]]),
      skipped: [],
    };
    const actual: ActualState = {
      routes: new Map([
        [
          "172.30.9.0/24",
          {
            dst: "172.30.9.0",
            prefixLen: 24,
            gateway: "172.30.9.0",
            oif: 7,
            onlink: true,
            protocol: TRELLIS_ROUTE_PROTOCOL,
            table: 254,
            scope: "universe",
            type: "unicast",
          },
        ],
        [
          "172.30.77.0/24",
          {
            dst: "172.30.77.0",
            prefixLen: 24,
            gateway: "172.30.77.0",
            oif: 7,
            onlink: true,
            protocol: TRELLIS_ROUTE_PROTOCOL,
            table: 254,
            scope: "universe",
            type: "unicast",
          },
        ],
      ]),
      neighbors: new Map([
        ["172.30.9.0", { index: 7, ip: "172.30.9.0", mac: "02:00:00:00:00:ff", state: "permanent", permanent: true }],
      ]),
      fdb: new Map(),
      deviceAddresses: [{ index: 7, address: "172.30.4.0", prefixLen: 32 }],
    };
    const plan = planChanges(desired, actual, 7);
    assert.deepEqual(plan.routes.put, []);
    assert.deepEqual(
      plan.routes.remove.map((r) => r.dst),
      ["172.30.77.0"],
    );
    assert.deepEqual(
      plan.neighbors.put.map((n) => n.mac),
      ["02:00:00:00:00:0c"],
    );
    assert.deepEqual(
      plan.fdb.put.map((f) => f.dst),
      ["10.42.0.12"],
    );
    assert.deepEqual(plan.addresses, {
      put: [{ index: 7, address: "172.30.5.0", prefixLen: 32 }],
      remove: [{ index: 7, address: "172.30.4.0", prefixLen: 32 }],
    });
    assert.equal(planSize(plan), 5);
  });
});
