import assert from "node:assert/strict";
import { parseCidr, type Cidr } from "#lib/ipv4.js";
import { validateNetworkConfig } from "../src/config/network-config.js";
import { backendFor } from "../src/dataplane/backends/registry.js";
import { desiredState, type DesiredInput } from "../src/dataplane/desired.js";
import { TRELLIS_ROUTE_PROTOCOL } from "../src/dataplane/marks.js";
import { directlyReachable, type UnderlayLink } from "../src/dataplane/underlay.js";
import type { Peer } from "../src/lease/peers.js";

const cidr = (text: string): Cidr => parseCidr(text)!;
const underlay: UnderlayLink = {
  name: "eth0",
  index: 2,
  mtu: 1500,
  localIp: "10.42.0.11",
  addresses: ["10.42.0.11/24"],
};
const peer = (subnet: string, publicIp: string, extra: Partial<Peer["attrs"]> = {}): Peer => ({
  subnet: cidr(subnet),
  attrs: { publicIp, backendType: "vxlan", vni: 1, vtepMac: "02:00:00:00:00:0c", ...extra },
  reserved: false,
});

function input(network: Record<string, unknown>, peers: Peer[], deviceIndex: number | undefined = 7): DesiredInput {
  return {
    backend: backendFor(validateNetworkConfig({ Network: "172.30.0.0/16", Backend: network }).backend),
    deviceName: "flannel.1",
    underlay,
    own: { subnet: cidr("172.30.5.0/24"), vtepMac: "02:00:00:00:00:0b" },
    peers,
    deviceIndex,
  };
}

describe("desired dataplane state", () => {
  it("vxlan: a device like flannel's, and per peer an onlink route, a permanent ARP entry and an FDB entry", () => {
    const state = desiredState(input({ Type: "vxlan" }, [peer("172.30.9.0/24", "10.42.0.12")]));
    assert.deepEqual(state.device, {
      name: "flannel.1",
      vni: 1,
      port: 8472,
      local: "10.42.0.11",
      underlayIndex: 2,
      mtu: 1450,
      mac: "02:00:00:00:00:0b",
      address: "172.30.5.0/32",
    });
    assert.deepEqual(
      [...state.routes.values()],
      [
        {
          dst: "172.30.9.0",
          prefixLen: 24,
          gateway: "172.30.9.0",
          oif: 7,
          onlink: true,
          protocol: TRELLIS_ROUTE_PROTOCOL,
        },
      ],
    );
    assert.deepEqual(
      [...state.neighbors.values()],
      [{ index: 7, ip: "172.30.9.0", mac: "02:00:00:00:00:0c", permanent: true }],
    );
    assert.deepEqual([...state.fdb.values()], [{ index: 7, mac: "02:00:00:00:00:0c", dst: "10.42.0.12" }]);
    assert.deepEqual(state.skipped, []);
  });

  it("vxlan + DirectRouting: a plain route via the public IP for peers on the same L2, the tunnel for the rest", () => {
    const state = desiredState(
      input({ Type: "vxlan", DirectRouting: true }, [
        peer("172.30.9.0/24", "10.42.0.12"),
        peer("172.30.10.0/24", "10.50.0.3", { vtepMac: "02:00:00:00:00:0d" }),
      ]),
    );
    assert.deepEqual(state.routes.get("172.30.9.0/24"), {
      dst: "172.30.9.0",
      prefixLen: 24,
      gateway: "10.42.0.12",
      oif: 2,
      protocol: TRELLIS_ROUTE_PROTOCOL,
    });
    assert.equal(state.routes.get("172.30.10.0/24")?.gateway, "172.30.10.0");
    assert.deepEqual([...state.fdb.keys()], ["02:00:00:00:00:0d"]);
  });

  it("host-gw: a route via each peer's public IP, and a clear skip for a peer that is not directly reachable", () => {
    const state = desiredState(
      input({ Type: "host-gw" }, [
        peer("172.30.9.0/24", "10.42.0.12", { backendType: "host-gw" }),
        peer("172.30.10.0/24", "10.50.0.3", { backendType: "host-gw" }),
      ]),
    );
    assert.equal(state.device, undefined);
    assert.deepEqual(
      [...state.routes.values()],
      [{ dst: "172.30.9.0", prefixLen: 24, gateway: "10.42.0.12", oif: 2, protocol: TRELLIS_ROUTE_PROTOCOL }],
    );
    assert.equal(state.skipped.length, 1);
    assert.match(
      state.skipped[0]?.reason ?? "",
      /10\.50\.0\.3 is not on a network directly connected to eth0; host-gw needs every node on one L2 network/,
    );
  });

  it("skips peers it cannot serve: other backend, other VNI, no VTEP MAC", () => {
    const state = desiredState(
      input({ Type: "vxlan" }, [
        peer("172.30.9.0/24", "10.42.0.12", { backendType: "host-gw" }),
        peer("172.30.10.0/24", "10.42.0.13", { vni: 2 }),
        { subnet: cidr("172.30.11.0/24"), attrs: { publicIp: "10.42.0.14", backendType: "vxlan" }, reserved: true },
      ]),
    );
    assert.equal(state.routes.size, 0);
    assert.deepEqual(
      state.skipped.map((s) => s.reason),
      [
        "peer runs backend host-gw, this network uses vxlan",
        "peer uses VNI 2, this network uses 1",
        "lease has no BackendData.VtepMAC",
      ],
    );
  });

  it("knows which addresses are directly reachable", () => {
    assert.ok(directlyReachable(underlay, "10.42.0.200"));
    assert.ok(!directlyReachable(underlay, "10.43.0.1"));
    assert.ok(!directlyReachable({ ...underlay, addresses: ["10.42.0.11/32"] }, "10.42.0.12"));
  });
});
