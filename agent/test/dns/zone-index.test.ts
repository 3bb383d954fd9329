// The zone index (pure): which names exist, duplicates, and what is skipped.
import assert from "node:assert/strict";
import { buildZoneIndex } from "../../src/dns/zone-index.js";
import type { DnsView } from "../../src/dns/view.js";

const options = { negativeTtl: 5, serial: 7, nameserverAddresses: [] };

describe("zone index", () => {
  it("every ancestor of a name exists; nothing else does", () => {
    const view: DnsView = {
      zone: "Cluster.Local",
      services: [
        {
          namespace: "ns",
          name: "a",
          clusterIP: "10.0.0.1",
          ports: [{ name: "http", port: 80, protocol: "TCP" }],
          endpoints: [],
        },
      ],
      pods: [],
    };
    const index = buildZoneIndex(view, options);
    assert.equal(index.zone, "cluster.local");
    assert.deepEqual([...index.names.keys()].sort(), [
      "_http._tcp.a.ns.svc.cluster.local",
      "_tcp.a.ns.svc.cluster.local",
      "a.ns.svc.cluster.local",
      "cluster.local",
      "dns-version.cluster.local",
      "dns.cluster.local",
      "ns.dns.cluster.local",
      "ns.svc.cluster.local",
      "pod.cluster.local",
      "svc.cluster.local",
    ]);
    assert.deepEqual(index.names.get("_tcp.a.ns.svc.cluster.local"), []);
    assert.deepEqual([...index.reverse.entries()], [["1.0.0.10.in-addr.arpa", ["a.ns.svc.cluster.local"]]]);
    assert.equal(index.soa.serial, 7);
  });

  it("repeated endpoints and ports give one record each, in small and in large record sets", () => {
    const ips = Array.from({ length: 30 }, (_, i) => `172.30.0.${(i % 20) + 1}`); // 20 distinct, 10 repeated
    const view: DnsView = {
      zone: "cluster.local",
      services: [
        {
          namespace: "ns",
          name: "small",
          clusterIP: "None",
          ports: [
            { name: "p", port: 1, protocol: "TCP" },
            { name: "p", port: 1, protocol: "TCP" },
          ],
          endpoints: [{ ip: "172.30.1.1" }, { ip: "172.30.1.1" }],
        },
        { namespace: "ns", name: "large", clusterIP: "None", ports: [], endpoints: ips.map((ip) => ({ ip })) },
      ],
      pods: [],
    };
    const index = buildZoneIndex(view, options);
    assert.equal(index.names.get("small.ns.svc.cluster.local")?.length, 1);
    assert.equal(index.names.get("_p._tcp.small.ns.svc.cluster.local")?.length, 1);
    assert.equal(index.names.get("large.ns.svc.cluster.local")?.length, 20);
  });

  it("skips what cannot be named, and a Service listed twice keeps its first entry", () => {
    const view: DnsView = {
      zone: "cluster.local",
      services: [
        {
          namespace: "ns",
          name: "a",
          clusterIP: "10.0.0.1",
          ports: [{ name: "Way_Too_Long_Port_Name", port: 1, protocol: "TCP" }],
          endpoints: [],
        },
        { namespace: "ns", name: "a", clusterIP: "10.0.0.2", ports: [], endpoints: [] },
        {
          namespace: "ns",
          name: "h",
          clusterIP: "None",
          ports: [],
          endpoints: [{ ip: "172.30.0.1", hostname: "Not_A_Label" }, { ip: "172.30.0.2" }],
        },
      ],
      pods: [{ ip: "fd00::1", namespace: "ns" }],
    };
    const index = buildZoneIndex(view, options);
    assert.deepEqual(index.names.get("a.ns.svc.cluster.local"), [{ type: "A", data: "10.0.0.1" }]);
    assert.equal([...index.names.keys()].filter((n) => n.startsWith("_")).length, 0, "an invalid port name has no SRV");
    assert.deepEqual(
      index.skipped.map((s) => s.what),
      ["service ns/a", "endpoint 172.30.0.1 of service ns/h", "pod ns/fd00::1"],
    );
    assert.deepEqual(index.names.get("h.ns.svc.cluster.local"), [{ type: "A", data: "172.30.0.2" }]);
  });
});
