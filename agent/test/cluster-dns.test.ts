// The cluster DNS daemon's logic over fakes (in-memory etcd, fake clock, a fake DNS server): the view it builds from
// the registry, when it starts answering and how it batches changes, how a server publishes itself as an endpoint of
// the DNS Service and withdraws, and the `dns` command's options.
import assert from "node:assert/strict";
import { Emitter } from "#lib/emitter.js";
import { isTrellisError } from "#lib/errors.js";
import { parseIpv4 } from "#lib/ipv4.js";
import { encodePodRecord } from "#lib/pod-record.js";
import { parseDnsOptions, type RawDnsOptions } from "../src/config/dns-options.js";
import { ClusterDns, VIEW_DEBOUNCE_MS, type DnsServing } from "../src/daemon/cluster-dns.js";
import type { ListenAddress } from "../src/dns/options.js";
import type { DnsServerEvent } from "../src/dns/server.js";
import type { DnsStats } from "../src/dns/stats.js";
import type { DnsView } from "../src/dns/view.js";
import { ServiceCatalog } from "../src/services/catalog.js";
import { DNS_SERVICE } from "../src/services/dns-service.js";
import { dnsView } from "../src/services/dns-view.js";
import { RegistryLayout } from "../src/services/registry-layout.js";
import type { LeasePort, SelfEndpointEvent } from "../src/services/self-endpoint.js";
import { FakeClock, settle } from "./support/fake-clock.js";
import { MemoryKv } from "./support/memory-kv.js";

const layout = new RegistryLayout("/trellis");
const SUBNETS = "/coreos.com/network/subnets/";
const ip = (text: string): number => parseIpv4(text) ?? assert.fail(text);

function service(name: string, spec: Record<string, unknown>, namespace = "default"): [string, string] {
  return [layout.service(namespace, name), JSON.stringify({ metadata: { name, namespace }, spec })];
}

function podRecord(node: string, name: string, address: string, labels: Record<string, string>): [string, string] {
  return [
    layout.pod(node, name, "eth0"),
    encodePodRecord({ namespace: "default", name, labels, ip: ip(address), containerId: name, ifname: "eth0" }),
  ];
}

/** Leases as etcd keeps them: a revoked or expired lease takes its keys with it. */
class FakeLeases implements LeasePort {
  private next = 1;
  readonly live = new Set<string>();
  failing = false;
  constructor(private readonly kv: MemoryKv) {}
  grantLease(): Promise<string> {
    if (this.failing) return Promise.reject(new Error("etcd is down (fake)"));
    const id = String(this.next++);
    this.live.add(id);
    return Promise.resolve(id);
  }
  keepAlive(id: string): Promise<number | undefined> {
    if (this.failing) return Promise.reject(new Error("etcd is down (fake)"));
    return Promise.resolve(this.live.has(id) ? 10 : undefined);
  }
  revoke(id: string): Promise<void> {
    this.expire(id);
    return Promise.resolve();
  }
  /** The lease ends (revoked, or its TTL ran out): its keys are deleted, as etcd does. */
  expire(id: string): void {
    this.live.delete(id);
    const keys = [...this.kv.data.values()].filter((e) => e.lease === id).map((e) => e.key);
    if (keys.length > 0)
      void this.kv.commit(
        [],
        keys.map((key) => ({ delete: key })),
      );
  }
}

class FakeServer implements DnsServing {
  readonly events = new Emitter<DnsServerEvent>();
  views: DnsView[] = [];
  started = 0;
  closed = false;
  start(): Promise<readonly ListenAddress[]> {
    this.started += 1;
    return Promise.resolve([{ address: "169.254.20.10", port: 53 }]);
  }
  setView(view: DnsView): void {
    this.views.push(view);
  }
  stats(): DnsStats {
    throw new Error("not used");
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

describe("cluster DNS daemon (fakes)", () => {
  describe("the view of the registry", () => {
    it("gives every Service its cluster IP and ports, a headless one its endpoints, and only pods of leased nodes", () => {
      const catalog = new ServiceCatalog(layout);
      const entries = [
        service("web", { clusterIP: "10.254.0.20", selector: { app: "web" }, ports: [{ name: "http", port: 80 }] }),
        service("db", { clusterIP: "None", selector: { app: "web" }, ports: [{ port: 5432 }] }),
        podRecord("172.30.1.0-24", "a", "172.30.1.2", { app: "web" }),
        podRecord("172.30.2.0-24", "b", "172.30.2.2", { app: "web" }),
        [layout.config, JSON.stringify({ clusterDomain: "corp.example" })] as [string, string],
      ];
      for (const [key, value] of entries)
        catalog.apply({ type: "put", entry: { key, value, modRevision: "1", lease: undefined } });
      const view = dnsView(catalog, (node) => node === "172.30.1.0-24");
      assert.equal(view.zone, "corp.example");
      assert.deepEqual(
        view.pods,
        [{ ip: "172.30.1.2", namespace: "default" }],
        "the pod of the node without a lease is not answered",
      );
      const byName = new Map(view.services.map((s) => [s.name, s]));
      assert.deepEqual(byName.get("web"), {
        namespace: "default",
        name: "web",
        clusterIP: "10.254.0.20",
        ports: [{ name: "http", port: 80, protocol: "TCP" }],
        endpoints: [],
      });
      assert.deepEqual(
        byName.get("db")?.endpoints,
        [{ ip: "172.30.1.2" }],
        "a headless Service: its endpoints on leased nodes",
      );
      assert.equal(byName.get("db")?.clusterIP, "None");
    });
  });

  describe("the daemon", () => {
    const LAMEDUCK_MS = 2000;
    /** Aborts a running daemon and lets its lameduck time pass. */
    const stop = async (clock: FakeClock, controller: AbortController, running: Promise<void>): Promise<void> => {
      controller.abort();
      await clock.advance(LAMEDUCK_MS);
      await running;
    };
    const setup = (): { kv: MemoryKv; clock: FakeClock; server: FakeServer; leases: FakeLeases; dns: ClusterDns } => {
      const kv = new MemoryKv();
      const clock = new FakeClock();
      const server = new FakeServer();
      const leases = new FakeLeases(kv);
      const dns = new ClusterDns({
        kv,
        layout,
        subnetsPrefix: SUBNETS,
        clock,
        server,
        selfEndpoint: {
          leases,
          service: DNS_SERVICE,
          clusterIP: (c) => c.dnsClusterIP,
          endpoint: { ip: ip("10.42.0.11"), ports: [53, 53] },
          owner: "10.42.0.11",
          ttlSeconds: 10,
        },
        lameduckMs: LAMEDUCK_MS,
      });
      return { kv, clock, server, leases, dns };
    };

    it("answers only with a complete snapshot, then publishes itself; changes are batched into one view", async () => {
      const { kv, clock, server, dns } = setup();
      kv.put(SUBNETS + "172.30.1.0-24", "{}");
      kv.put(...service("web", { clusterIP: "10.254.0.20", ports: [{ port: 80 }] }));
      assert.equal(dns.notReadyReason(), "service registry not listed yet");
      const controller = new AbortController();
      const running = dns.run(controller.signal);
      await settle();
      assert.equal(server.started, 0, "not before the first view");
      await clock.advance(VIEW_DEBOUNCE_MS);
      assert.equal(server.started, 1);
      assert.deepEqual(
        server.views
          .at(-1)
          ?.services.map((s) => s.name)
          .sort(),
        ["web"],
      );
      assert.equal(dns.notReadyReason(), undefined);
      await clock.advance(100);
      const slice = kv.data.get(layout.slice("kube-system", "kube-dns", "10.42.0.11"));
      assert.ok(slice?.lease !== undefined, "published on a lease of its own");
      assert.deepEqual(JSON.parse(slice.value), {
        apiVersion: "v1",
        kind: "Endpoints",
        metadata: { name: "kube-dns", namespace: "kube-system" },
        subsets: [
          {
            addresses: [{ ip: "10.42.0.11" }],
            ports: [
              { name: "dns", port: 53, protocol: "UDP" },
              { name: "dns-tcp", port: 53, protocol: "TCP" },
            ],
          },
        ],
      });
      assert.match(
        kv.data.get(layout.service("kube-system", "kube-dns"))?.value ?? "",
        /"clusterIP":"10\.254\.0\.10"/,
        "the DNS Service at dnsClusterIP",
      );
      // A burst of ten writes: one view.
      const before = server.views.length;
      for (let i = 0; i < 10; i++)
        kv.put(...service(`s${i}`, { clusterIP: `10.254.1.${i + 1}`, ports: [{ port: 80 }] }));
      await clock.advance(VIEW_DEBOUNCE_MS);
      assert.equal(server.views.length, before + 1);
      assert.equal(server.views.at(-1)?.services.length, 12, "web, kube-dns and s0..s9");
      assert.equal(server.started, 1, "listening once");
      controller.abort();
      await clock.advance(LAMEDUCK_MS - 1);
      assert.equal(
        kv.data.get(layout.slice("kube-system", "kube-dns", "10.42.0.11")),
        undefined,
        "withdrawn at stop: its lease revoked",
      );
      assert.ok(!server.closed, "answering on while the proxies drop the endpoint");
      await clock.advance(1);
      await running;
      assert.ok(server.closed, "closed after the lameduck time");
    });

    it("a lost lease (a long partition, etcd restored) is replaced and the endpoint published again; a deleted one is put back", async () => {
      const { kv, clock, leases, dns } = setup();
      const events: SelfEndpointEvent[] = [];
      dns.events.on((e) => {
        if (e.type === "endpoint") events.push(e.event);
      });
      const controller = new AbortController();
      const running = dns.run(controller.signal);
      await clock.advance(200);
      const key = layout.slice("kube-system", "kube-dns", "10.42.0.11");
      const first = kv.data.get(key)?.lease ?? assert.fail("not published");
      leases.expire(first);
      assert.equal(kv.data.get(key), undefined);
      await clock.advance(10_000); // the next renewal finds the lease gone
      const second = kv.data.get(key)?.lease ?? assert.fail("not published again");
      assert.notEqual(second, first);
      await kv.commit([], [{ delete: key }]);
      await clock.advance(4000);
      assert.equal(kv.data.get(key)?.lease, second, "a deleted slice is written back at the next renewal");
      assert.ok(events.filter((e) => e.type === "published").length >= 3);
      await stop(clock, controller, running);
    });

    it("etcd down at start: it retries with backoff, reporting each attempt; it publishes once etcd answers", async () => {
      const { kv, clock, leases, dns } = setup();
      const retries: number[] = [];
      dns.events.on((e) => {
        if (e.type === "endpoint" && e.event.type === "retrying") retries.push(e.event.retryInMs);
      });
      leases.failing = true;
      const controller = new AbortController();
      const running = dns.run(controller.signal);
      await clock.advance(3000);
      assert.ok(retries.length >= 2, `retried ${retries.length} times`);
      assert.ok(dns.warnings().some((w) => /not published as an endpoint of kube-system\/kube-dns/.test(w)));
      leases.failing = false;
      await clock.advance(6000);
      assert.ok(kv.data.get(layout.slice("kube-system", "kube-dns", "10.42.0.11")) !== undefined);
      assert.deepEqual(dns.warnings(), []);
      await stop(clock, controller, running);
    });
  });

  describe("`dns` options", () => {
    const raw: RawDnsOptions = {
      nodeLocalIp: "169.254.20.10",
      port: "53",
      resolvConf: "/etc/resolv.conf",
      ttl: "5s",
      endpointTtl: "10s",
      lameduck: "2s",
      register: true,
      statusIp: "127.0.0.1",
      statusPort: "9809",
      logLevel: "info",
      logFormat: "json",
    };
    it('takes the defaults, and a node-local address of "" for none', () => {
      const options = parseDnsOptions(raw);
      assert.equal(options.port, 53);
      assert.equal(options.ttlSeconds, 5);
      assert.equal(options.endpointTtlSeconds, 10);
      assert.equal(options.lameduckMs, 2000);
      assert.deepEqual(options.status, { ip: "127.0.0.1", port: 9809 });
      assert.equal(parseDnsOptions({ ...raw, nodeLocalIp: "" }).nodeLocalIp, undefined);
      assert.equal(parseDnsOptions({ ...raw, statusPort: "0" }).status, undefined);
    });
    it("refuses a bad value naming the flag, the value and what is allowed", () => {
      const cases: [Partial<RawDnsOptions>, RegExp][] = [
        [{ nodeLocalIp: "169.254.20" }, /--node-local-ip.*169\.254\.20.*IPv4 address/],
        [{ port: "0" }, /--port.*"0".*from 1 to 65535/],
        [{ ttl: "1.5s" }, /--ttl.*whole seconds/],
        [{ endpointTtl: "1s" }, /--endpoint-ttl.*from 2s/],
        [{ lameduck: "2m" }, /--lameduck.*"2m".*between 0ms and 1m/],
        [{ resolvConf: "resolv.conf" }, /--resolv-conf.*absolute path/],
      ];
      for (const [change, message] of cases) {
        assert.throws(
          () => parseDnsOptions({ ...raw, ...change }),
          (error: unknown) => isTrellisError(error) && message.test(error.message),
          JSON.stringify(change),
        );
      }
    });
  });
});
