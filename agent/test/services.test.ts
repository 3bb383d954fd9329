// The service registry's pure parts and its transactions over the in-memory store: Service validation in
// Kubernetes' terms, the etcd layout, conflict-free cluster IP allocation, the in-memory catalog (which Services a
// change touches, backends from selectors and leases) and the proxy's plans (full, incremental, delayed deletes).
import assert from "node:assert/strict";
import { formatIpv4, parseCidr, parseIpv4 } from "#lib/ipv4.js";
import { isTrellisError } from "#lib/errors.js";
import { ServiceCatalog } from "../src/services/catalog.js";
import { endpointsObject, parseEndpointArg } from "../src/services/endpoints-spec.js";
import { encodePodRecord, podIdentity } from "#lib/pod-record.js";
import {
  RegistryLayout,
  validateServiceNetworkConfig,
  defaultServiceNetworkConfig,
} from "../src/services/registry-layout.js";
import { applyService, createService, deleteService, listServices } from "../src/services/service-admin.js";
import { parseService } from "../src/services/service-spec.js";
import { ProxyPlanner, STALE_DELETE_DELAY_MS } from "../src/proxy/proxy-plan.js";
import { baseScript, MAX_PICK, serviceProgram, type ServiceProgram } from "../src/proxy/service-rules.js";
import { MemoryKv } from "./support/memory-kv.js";

const layout = new RegistryLayout("/trellis");
const podNetwork = parseCidr("172.30.0.0/16") ?? assert.fail();
const ip = (text: string): number => parseIpv4(text) ?? assert.fail(text);
const nginx = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  apiVersion: "v1",
  kind: "Service",
  metadata: { name: "nginx-service" },
  spec: { selector: { app: "nginx" }, ports: [{ port: 8000, targetPort: 80 }], ...extra },
});
const invalid =
  (pattern: RegExp) =>
  (error: unknown): boolean =>
    isTrellisError(error) && pattern.test(error.message);

describe("services: registry, catalog and proxy plans (pure, in-memory store)", () => {
  describe("a v1 Service, validated as Kubernetes does", () => {
    it("takes the chapter's Service with Kubernetes' defaults", () => {
      const spec = parseService(nginx());
      assert.deepEqual(spec, {
        namespace: "default",
        name: "nginx-service",
        clusterIP: undefined,
        ports: [{ port: 8000, targetPort: 80, protocol: "TCP" }],
        selector: { app: "nginx" },
        sessionAffinity: "None",
        affinityTimeoutSeconds: 10_800,
      });
      assert.equal(parseService(nginx({ clusterIP: "None", ports: undefined })).clusterIP, "None");
      assert.equal(parseService(nginx({ selector: {} })).selector, undefined, "an empty selector is no selector");
    });
    it("refuses what it cannot honour, naming the field, the value and what is allowed", () => {
      const cases: [Record<string, unknown>, RegExp][] = [
        [{ ...nginx(), metadata: { name: "Nginx" } }, /metadata\.name "Nginx" is invalid: must be a DNS-1035 label/],
        [{ ...nginx(), metadata: { name: "n", namespace: "a_b" } }, /metadata\.namespace "a_b" is invalid/],
        [{ ...nginx(), kind: "Deployment" }, /kind "Deployment" is invalid: must be "Service"/],
        [nginx({ type: "NodePort" }), /spec\.type "NodePort" is invalid: must be "ClusterIP"/],
        [nginx({ ports: [] }), /spec\.ports \[\] is invalid: must list at least one port/],
        [
          nginx({ ports: [{ port: 70000 }] }),
          /spec\.ports\[0\]\.port 70000 is invalid: must be an integer from 1 to 65535/,
        ],
        [
          nginx({ ports: [{ port: 80, protocol: "SCTP" }] }),
          /spec\.ports\[0\]\.protocol "SCTP" is invalid: must be one of TCP, UDP/,
        ],
        [nginx({ ports: [{ port: 80, targetPort: "http" }] }), /targetPort "http" is invalid: must be a port number/],
        [
          nginx({ ports: [{ port: 80 }, { port: 81 }] }),
          /spec\.ports\[0\]\.name \(missing\) is invalid: is required when a Service has more than one port/,
        ],
        [
          nginx({
            ports: [
              { name: "a", port: 80 },
              { name: "a", port: 81 },
            ],
          }),
          /duplicates another port's name/,
        ],
        [
          nginx({
            ports: [
              { name: "a", port: 80 },
              { name: "b", port: 80 },
            ],
          }),
          /duplicates another port with the same port and protocol/,
        ],
        [nginx({ clusterIP: "10.254.1" }), /spec\.clusterIP "10\.254\.1" is invalid/],
        [
          nginx({ sessionAffinity: "Cookie" }),
          /spec\.sessionAffinity "Cookie" is invalid: must be one of None, ClientIP/,
        ],
        [nginx({ selector: { "bad key!": "x" } }), /spec\.selector key "bad key!" is invalid/],
      ];
      for (const [raw, pattern] of cases) assert.throws(() => parseService(raw), invalid(pattern), pattern.source);
    });
    it("the service network config takes defaults, and refuses a bad range or DNS address by name", () => {
      assert.deepEqual(defaultServiceNetworkConfig(), {
        clusterIPRange: { ip: ip("10.254.0.0"), prefixLen: 16 },
        clusterDomain: "cluster.local",
        dnsClusterIP: ip("10.254.0.10"),
      });
      assert.equal(
        formatIpv4(validateServiceNetworkConfig({ clusterIPRange: "10.96.0.0/12" }).dnsClusterIP),
        "10.96.0.10",
      );
      assert.throws(
        () => validateServiceNetworkConfig({ clusterIPRange: "10.254.0.1/16" }),
        invalid(/clusterIPRange "10\.254\.0\.1\/16" is invalid/),
      );
      assert.throws(
        () => validateServiceNetworkConfig({ dnsClusterIP: "10.1.0.10" }),
        invalid(/dnsClusterIP "10\.1\.0\.10" is invalid: must be an address inside clusterIPRange 10\.254\.0\.0\/16/),
      );
      assert.throws(() => validateServiceNetworkConfig({ clusterDomain: "Cluster.Local." }), invalid(/clusterDomain/));
    });
    it("explicit endpoints: IP or IP:PORT, a port per endpoint only for a single-port Service", () => {
      assert.deepEqual(parseEndpointArg("172.30.40.3:80"), { ip: ip("172.30.40.3"), port: 80 });
      assert.throws(() => parseEndpointArg("172.30.40.3:0"), invalid(/--endpoint "172\.30\.40\.3:0" is invalid/));
      const selectorless = parseService(nginx({ selector: undefined }));
      assert.deepEqual(endpointsObject(selectorless, [{ ip: ip("10.0.0.5"), port: 8080 }]).subsets, [
        { addresses: [{ ip: "10.0.0.5" }], ports: [{ port: 8080, protocol: "TCP" }] },
      ]);
      assert.throws(
        () => endpointsObject(parseService(nginx()), [{ ip: 1 }]),
        invalid(/only for a Service without a selector/),
      );
    });
    it("a pod's identity comes from CNI_ARGS K8S_POD_NAMESPACE and K8S_POD_NAME, or it is not an endpoint", () => {
      assert.deepEqual(
        podIdentity(
          new Map([
            ["K8S_POD_NAMESPACE", "default"],
            ["K8S_POD_NAME", "web"],
          ]),
        ),
        { namespace: "default", name: "web" },
      );
      assert.equal(podIdentity(new Map([["K8S_POD_NAME", "web"]])), undefined);
    });
  });

  describe("the registry's transactions", () => {
    const deps = (kv: MemoryKv, random = Math.random): Parameters<typeof createService>[0] => ({
      kv,
      layout,
      now: () => new Date("2026-12-01T00:00:00Z"),
      random,
    });
    const config = defaultServiceNetworkConfig();

    it("creates, lists, applies (keeping the cluster IP) and deletes a Service with its cluster IP key", async () => {
      const kv = new MemoryKv();
      const created = await createService(deps(kv), parseService(nginx({ clusterIP: "10.254.126.60" })), config);
      assert.equal(created.clusterIP, ip("10.254.126.60"));
      assert.equal(kv.data.get("/trellis/clusterips/10.254.126.60")?.value, "default/nginx-service");
      assert.equal(
        (
          JSON.parse(kv.data.get("/trellis/services/default/nginx-service")?.value ?? "{}") as {
            spec: { clusterIP: string };
          }
        ).spec.clusterIP,
        "10.254.126.60",
      );
      const again = await applyService(
        deps(kv),
        parseService(nginx({ ports: [{ port: 8000, targetPort: 8080 }] })),
        config,
      );
      assert.equal(again.outcome, "configured");
      assert.equal(again.service.clusterIP, ip("10.254.126.60"));
      assert.equal(
        (await applyService(deps(kv), parseService(nginx({ ports: [{ port: 8000, targetPort: 8080 }] })), config))
          .outcome,
        "unchanged",
      );
      await assert.rejects(
        applyService(deps(kv), parseService(nginx({ clusterIP: "10.254.0.5" })), config),
        invalid(/spec\.clusterIP "10\.254\.0\.5" is invalid: cannot replace 10\.254\.126\.60 .* immutable/),
      );
      assert.equal((await listServices(deps(kv))).services.length, 1);
      await deleteService(deps(kv), "default", "nginx-service");
      assert.deepEqual([...kv.data.keys()], []);
      await assert.rejects(
        deleteService(deps(kv), "default", "nginx-service"),
        invalid(/there is no Service default\/nginx-service/),
      );
    });

    it("refuses a requested IP outside the range or taken, naming both, and writes nothing", async () => {
      const kv = new MemoryKv();
      await createService(deps(kv), parseService(nginx({ clusterIP: "10.254.0.50" })), config);
      const other = { ...nginx({ clusterIP: "10.254.0.50" }), metadata: { name: "other" } };
      await assert.rejects(
        createService(deps(kv), parseService(other), config),
        invalid(
          /spec\.clusterIP 10\.254\.0\.50 is taken by default\/nginx-service \(range 10\.254\.0\.0\/16\); nothing written/,
        ),
      );
      await assert.rejects(
        createService(
          deps(kv),
          parseService({ ...nginx({ clusterIP: "10.99.0.1" }), metadata: { name: "other" } }),
          config,
        ),
        invalid(/spec\.clusterIP "10\.99\.0\.1" is invalid: must be inside the cluster IP range 10\.254\.0\.0\/16/),
      );
      await assert.rejects(createService(deps(kv), parseService(nginx()), config), invalid(/already exists/));
      assert.equal(kv.data.size, 2);
    });

    it("50 concurrent creates get 50 distinct cluster IPs, even when they all pick the same one first", async () => {
      const kv = new MemoryKv();
      // Every create's first pick is the same address: all but one lose that race and pick again.
      const picks = new Map<number, number>();
      const creates = Array.from({ length: 50 }, (_, n) => {
        const random = (): number => {
          const count = picks.get(n) ?? 0;
          picks.set(n, count + 1);
          return count === 0 ? 0.5 : Math.random();
        };
        return createService(deps(kv, random), parseService({ ...nginx(), metadata: { name: `svc-${n}` } }), config);
      });
      const services = await Promise.all(creates);
      const ips = new Set(services.map((s) => s.clusterIP));
      assert.equal(ips.size, 50);
      assert.equal([...kv.data.keys()].filter((k) => k.startsWith("/trellis/clusterips/")).length, 50);
      assert.ok(!ips.has(config.dnsClusterIP), "the DNS Service's address is never handed out");
    });
  });

  describe("the catalog", () => {
    const put = (
      key: string,
      value: unknown,
    ): { type: "put"; entry: { key: string; value: string; modRevision: string; lease: undefined } } => ({
      type: "put",
      entry: {
        key,
        value: typeof value === "string" ? value : JSON.stringify(value),
        modRevision: "1",
        lease: undefined,
      },
    });
    const service = (
      name: string,
      clusterIP: string,
      selector?: Record<string, string>,
      extra: Record<string, unknown> = {},
    ): Record<string, unknown> => ({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name, namespace: "default" },
      spec: {
        clusterIP,
        ports: [{ port: 80, targetPort: 8080 }],
        ...(selector === undefined ? {} : { selector }),
        ...extra,
      },
    });
    const pod = (name: string, address: string, labels: Record<string, string>, namespace = "default"): string =>
      encodePodRecord({ namespace, name, labels, ip: ip(address), containerId: name, ifname: "eth0" });

    it("a Service's backends are the matching pods of its namespace, on leased nodes; a change names the Services it touches", () => {
      const catalog = new ServiceCatalog(layout);
      assert.deepEqual(
        [...catalog.apply(put("/trellis/services/default/web", service("web", "10.254.0.20", { app: "web" })))],
        ["default/web"],
      );
      assert.deepEqual(
        [
          ...catalog.apply(
            put("/trellis/pods/172.30.1.0-24/a/eth0", pod("a", "172.30.1.2", { app: "web", tier: "x" })),
          ),
        ],
        ["default/web"],
      );
      assert.deepEqual(
        [...catalog.apply(put("/trellis/pods/172.30.2.0-24/b/eth0", pod("b", "172.30.2.2", { app: "db" })))],
        [],
      );
      assert.deepEqual(
        [...catalog.apply(put("/trellis/pods/172.30.2.0-24/c/eth0", pod("c", "172.30.2.3", { app: "web" }, "other")))],
        [],
        "another namespace",
      );
      catalog.apply(put("/trellis/pods/172.30.3.0-24/d/eth0", pod("d", "172.30.3.2", { app: "web" })));
      const leased = new Set(["172.30.1.0-24", "172.30.2.0-24"]);
      const resolved = catalog.resolve("default/web", (node) => leased.has(node));
      assert.deepEqual(resolved?.backends, [[{ ip: ip("172.30.1.2"), port: 8080 }]], "d's node holds no lease");
      assert.deepEqual([...catalog.servicesOnNode("172.30.3.0-24")], ["default/web"]);
      // Relabelled away: the change touches the Service it left.
      assert.deepEqual(
        [...catalog.apply(put("/trellis/pods/172.30.1.0-24/a/eth0", pod("a", "172.30.1.2", { app: "db" })))],
        ["default/web"],
      );
      assert.deepEqual(catalog.resolve("default/web", () => true)?.backends, [[{ ip: ip("172.30.3.2"), port: 8080 }]]);
    });

    it("a malformed value is skipped with its reason, and never stops the others", () => {
      const catalog = new ServiceCatalog(layout);
      catalog.apply(put("/trellis/services/default/good", service("good", "10.254.0.21")));
      catalog.apply(put("/trellis/services/default/bad", "{not json"));
      catalog.apply(put("/trellis/services/default/liar", service("other-name", "10.254.0.22")));
      catalog.apply(put("/trellis/pods/172.30.1.0-24/x/eth0", '{"namespace":"default"}'));
      assert.deepEqual([...catalog.serviceKeys()], ["default/good"]);
      assert.deepEqual([...catalog.problems.keys()].sort(), [
        "/trellis/pods/172.30.1.0-24/x/eth0",
        "/trellis/services/default/bad",
        "/trellis/services/default/liar",
      ]);
      assert.match(
        catalog.problems.get("/trellis/services/default/liar") ?? "",
        /the object names default\/other-name, its key default\/liar/,
      );
      catalog.apply({ type: "delete", key: "/trellis/services/default/bad" });
      assert.ok(!catalog.problems.has("/trellis/services/default/bad"));
    });
  });

  describe("the proxy's rules and plans", () => {
    const resolved = (backends: string[], extra: Record<string, unknown> = {}) => {
      const catalog = new ServiceCatalog(layout);
      catalog.apply({
        type: "put",
        entry: {
          key: "/trellis/services/default/web",
          value: JSON.stringify({
            metadata: { name: "web" },
            spec: {
              clusterIP: "10.254.0.20",
              selector: { app: "web" },
              ports: [{ port: 80, targetPort: 8080 }],
              ...extra,
            },
          }),
          modRevision: "1",
          lease: undefined,
        },
      });
      for (const [n, address] of backends.entries()) {
        catalog.apply({
          type: "put",
          entry: {
            key: `/trellis/pods/172.30.1.0-24/p${n}/eth0`,
            value: encodePodRecord({
              namespace: "default",
              name: `p${n}`,
              labels: { app: "web" },
              ip: ip(address),
              containerId: `p${n}`,
              ifname: "eth0",
            }),
            modRevision: "1",
            lease: undefined,
          },
        });
      }
      return catalog.resolve("default/web", () => true) ?? assert.fail();
    };

    it("renders a map element → a shared pick-N chain → numgen indexes the endpoints map → DNAT; hairpin by endpoint pairs", () => {
      const program = serviceProgram(resolved(["172.30.1.2", "172.30.1.3"]));
      assert.deepEqual(program.elements, [
        { map: "endpoints-tcp", key: "10.254.0.20 . 80 . 0", value: "172.30.1.2 . 8080" },
        { map: "endpoints-tcp", key: "10.254.0.20 . 80 . 1", value: "172.30.1.3 . 8080" },
        { map: "service-ips", key: "10.254.0.20 . tcp . 80", value: "goto pick-tcp-2" },
      ]);
      assert.deepEqual(program.chains, [], "no chain of its own without affinity");
      assert.deepEqual(program.hairpin, [ip("172.30.1.2"), ip("172.30.1.3")]);
      assert.ok(
        baseScript(podNetwork).includes(
          "add rule ip trellis-services pick-tcp-2 meta l4proto tcp dnat ip to ip daddr . tcp dport . numgen random mod 2 map @endpoints-tcp",
        ),
        "the shared chain picks index 0 or 1",
      );
      const many = Array.from({ length: MAX_PICK + 1 }, (_, i) => `172.30.1.${i + 10}`);
      const big = serviceProgram(resolved(many));
      assert.deepEqual(
        big.elements,
        [{ map: "service-ips", key: "10.254.0.20 . tcp . 80", value: "goto svc/default/web/tcp/80" }],
        "more endpoints than the shared chains cover: a chain of its own",
      );
      const rules = big.chains[0]?.rules ?? [];
      assert.equal(rules.length, MAX_PICK + 1);
      assert.deepEqual(
        [rules[0], rules[1], rules.at(-2), rules.at(-1)],
        [
          `numgen random mod ${MAX_PICK + 1} == 0 meta l4proto tcp dnat to 172.30.1.10:8080`,
          `numgen random mod ${MAX_PICK} == 0 meta l4proto tcp dnat to 172.30.1.11:8080`,
          `numgen random mod 2 == 0 meta l4proto tcp dnat to 172.30.1.${MAX_PICK + 9}:8080`,
          `meta l4proto tcp dnat to 172.30.1.${MAX_PICK + 10}:8080`,
        ],
        "1/n, then 1/(n−1) of the rest, …, then the rest: an even pick",
      );
      const none = serviceProgram(resolved([]));
      assert.deepEqual(none.elements, [
        { map: "no-endpoint-services", key: "10.254.0.20 . tcp . 80", value: "goto reject-chain" },
      ]);
      assert.deepEqual(none.chains, []);
      assert.deepEqual(none.hairpin, []);
      const sticky = serviceProgram(
        resolved(["172.30.1.2", "172.30.1.3"], {
          sessionAffinity: "ClientIP",
          sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } },
        }),
      );
      assert.deepEqual(sticky.sets, [
        { name: "aff/default/web/tcp/80/172.30.1.2/8080", timeoutSeconds: 60 },
        { name: "aff/default/web/tcp/80/172.30.1.3/8080", timeoutSeconds: 60 },
      ]);
      assert.deepEqual(sticky.chains.find((c) => c.name === "svc/default/web/tcp/80")?.rules, [
        "ip saddr @aff/default/web/tcp/80/172.30.1.2/8080 goto ep/default/web/tcp/80/172.30.1.2/8080",
        "ip saddr @aff/default/web/tcp/80/172.30.1.3/8080 goto ep/default/web/tcp/80/172.30.1.3/8080",
        "numgen random mod 2 == 0 goto ep/default/web/tcp/80/172.30.1.2/8080",
        "goto ep/default/web/tcp/80/172.30.1.3/8080",
      ]);
      assert.deepEqual(sticky.chains.find((c) => c.name === "ep/default/web/tcp/80/172.30.1.2/8080")?.rules, [
        "update @aff/default/web/tcp/80/172.30.1.2/8080 { ip saddr }",
        "meta l4proto tcp dnat to 172.30.1.2:8080",
      ]);
    });

    it("plans a full transaction first, then only what changed; a chain no longer used is flushed, and deleted a second later", () => {
      let now = 0;
      const planner = new ProxyPlanner(() => now);
      planner.adopt({ chains: new Set(["svc/default/old/tcp/1", "services"]), sets: new Set() });
      const affinity = { sessionAffinity: "ClientIP" };
      const two = serviceProgram(resolved(["172.30.1.2", "172.30.1.3"], affinity));
      const all = new Map<string, ServiceProgram>([["default/web", two]]);
      const full = planner.plan(new Map(), () => all, podNetwork);
      assert.ok(full.full);
      assert.match(full.script, /^add table ip trellis-services$/m);
      assert.match(full.script, /^flush map ip trellis-services service-ips$/m);
      assert.match(full.script, /^flush set ip trellis-services hairpin-endpoints$/m);
      assert.match(
        full.script,
        /^add rule ip trellis-services services ip saddr != 172\.30\.0\.0\/16 ip daddr \. meta l4proto \. th dport @service-ips jump mark-for-masquerade$/m,
        "sources outside the pod network are marked, for every Service at once",
      );
      assert.match(
        full.script,
        /^add element ip trellis-services hairpin-endpoints \{ 172\.30\.1\.2 \. 172\.30\.1\.2, 172\.30\.1\.3 \. 172\.30\.1\.3 \}$/m,
      );
      assert.match(
        full.script,
        /^flush chain ip trellis-services svc\/default\/old\/tcp\/1$/m,
        "a previous run's chain is retired",
      );
      assert.doesNotMatch(full.script, /^delete chain/m);
      planner.committed(full);
      // One endpoint goes: the port chain is rewritten, its endpoint chain retired, its hairpin pair deleted.
      const one = serviceProgram(resolved(["172.30.1.2"], affinity));
      const change = planner.plan(new Map([["default/web", one]]), () => assert.fail("not a full plan"), podNetwork);
      assert.equal(change.full, false);
      assert.deepEqual(change.script.trim().split("\n"), [
        "add chain ip trellis-services svc/default/web/tcp/80",
        "flush chain ip trellis-services svc/default/web/tcp/80",
        "add rule ip trellis-services svc/default/web/tcp/80 ip saddr @aff/default/web/tcp/80/172.30.1.2/8080 goto ep/default/web/tcp/80/172.30.1.2/8080",
        "add rule ip trellis-services svc/default/web/tcp/80 goto ep/default/web/tcp/80/172.30.1.2/8080",
        "flush chain ip trellis-services ep/default/web/tcp/80/172.30.1.3/8080",
        "delete element ip trellis-services hairpin-endpoints { 172.30.1.3 . 172.30.1.3 }",
      ]);
      planner.committed(change);
      assert.ok(planner.pendingDeletes);
      now += STALE_DELETE_DELAY_MS - 1;
      assert.equal(planner.plan(new Map(), () => new Map(), podNetwork).script, "", "not yet");
      now += 1;
      const later = planner.plan(new Map(), () => new Map(), podNetwork);
      assert.deepEqual(later.script.trim().split("\n").sort(), [
        "delete chain ip trellis-services ep/default/web/tcp/80/172.30.1.3/8080",
        "delete chain ip trellis-services svc/default/old/tcp/1",
        "delete set ip trellis-services aff/default/web/tcp/80/172.30.1.3/8080",
      ]);
      planner.committed(later);
      assert.equal(planner.pendingDeletes, false);
      // The last endpoint goes: the element moves to no-endpoint-services.
      const gone = planner.plan(
        new Map([["default/web", serviceProgram(resolved([]))]]),
        () => assert.fail(),
        podNetwork,
      );
      assert.match(gone.script, /^delete element ip trellis-services service-ips \{ 10\.254\.0\.20 \. tcp \. 80 \}$/m);
      assert.match(
        gone.script,
        /^add element ip trellis-services no-endpoint-services \{ 10\.254\.0\.20 \. tcp \. 80 : goto reject-chain \}$/m,
      );
    });

    it("moves a port between the shared pick chains and a chain of its own as its endpoint count crosses MAX_PICK", () => {
      const planner = new ProxyPlanner(() => 0);
      const addresses = (n: number) => Array.from({ length: n }, (_, i) => `172.30.1.${i + 10}`);
      const full = planner.plan(
        new Map(),
        () => new Map([["default/web", serviceProgram(resolved(addresses(MAX_PICK)))]]),
        podNetwork,
      );
      assert.match(full.script, /service-ips \{ 10\.254\.0\.20 \. tcp \. 80 : goto pick-tcp-16 \}/);
      planner.committed(full);
      const grow = planner.plan(
        new Map([["default/web", serviceProgram(resolved(addresses(MAX_PICK + 1)))]]),
        () => assert.fail("incremental"),
        podNetwork,
      );
      const lines = grow.script.trim().split("\n");
      assert.equal(
        lines.filter((l) => l.startsWith("delete element ip trellis-services endpoints-tcp")).length,
        MAX_PICK,
        "every endpoint element goes",
      );
      assert.ok(lines.includes("add chain ip trellis-services svc/default/web/tcp/80"));
      assert.ok(
        lines.includes(
          "add element ip trellis-services service-ips { 10.254.0.20 . tcp . 80 : goto svc/default/web/tcp/80 }",
        ),
      );
      assert.ok(
        lines.indexOf("add chain ip trellis-services svc/default/web/tcp/80") <
          lines.indexOf(
            "add element ip trellis-services service-ips { 10.254.0.20 . tcp . 80 : goto svc/default/web/tcp/80 }",
          ),
        "the chain exists before its element names it",
      );
      planner.committed(grow);
      const shrink = planner.plan(
        new Map([["default/web", serviceProgram(resolved(addresses(2)))]]),
        () => assert.fail("incremental"),
        podNetwork,
      );
      assert.match(
        shrink.script,
        /^add element ip trellis-services endpoints-tcp \{ 10\.254\.0\.20 \. 80 \. 1 : 172\.30\.1\.11 \. 8080 \}$/m,
      );
      assert.match(
        shrink.script,
        /^add element ip trellis-services service-ips \{ 10\.254\.0\.20 \. tcp \. 80 : goto pick-tcp-2 \}$/m,
      );
      assert.match(
        shrink.script,
        /^flush chain ip trellis-services svc\/default\/web\/tcp\/80$/m,
        "its own chain retired",
      );
    });

    it("keeps an endpoint's hairpin pair while any Service uses it: added with its first, deleted with its last", () => {
      const planner = new ProxyPlanner(() => 0);
      const web = serviceProgram(resolved(["172.30.1.2"]));
      const full = planner.plan(new Map(), () => new Map([["default/web", web]]), podNetwork);
      planner.committed(full);
      const other = serviceProgram({
        ...resolved(["172.30.1.2", "172.30.1.9"]),
        spec: { ...resolved([]).spec, name: "other" },
      });
      const added = planner.plan(new Map([["default/other", other]]), () => assert.fail(), podNetwork);
      assert.match(
        added.script,
        /^add element ip trellis-services hairpin-endpoints \{ 172\.30\.1\.9 \. 172\.30\.1\.9 \}$/m,
      );
      assert.doesNotMatch(added.script, /172\.30\.1\.2 \. 172\.30\.1\.2/, "already there for web");
      planner.committed(added);
      const webGone = planner.plan(new Map([["default/web", undefined]]), () => assert.fail(), podNetwork);
      assert.doesNotMatch(webGone.script, /hairpin-endpoints/, "other still uses 172.30.1.2");
      planner.committed(webGone);
      const otherGone = planner.plan(new Map([["default/other", undefined]]), () => assert.fail(), podNetwork);
      assert.match(
        otherGone.script,
        /^delete element ip trellis-services hairpin-endpoints \{ 172\.30\.1\.2 \. 172\.30\.1\.2, 172\.30\.1\.9 \. 172\.30\.1\.9 \}$/m,
      );
    });

    it("asks for conntrack cleanup when a UDP backend goes away, and when a UDP port gets its first backend", () => {
      const planner = new ProxyPlanner(() => 0);
      const udp = (backends: string[]) =>
        serviceProgram(resolved(backends, { ports: [{ port: 53, protocol: "UDP" }] }));
      const first = planner.plan(
        new Map(),
        () => new Map([["default/web", udp(["172.30.1.2", "172.30.1.3"])]]),
        podNetwork,
      );
      assert.deepEqual(first.udp, [{ key: "10.254.0.20 . udp . 53", removed: undefined }]);
      planner.committed(first);
      const fewer = planner.plan(new Map([["default/web", udp(["172.30.1.3"])]]), () => assert.fail(), podNetwork);
      assert.deepEqual(fewer.udp, [{ key: "10.254.0.20 . udp . 53", removed: [{ ip: ip("172.30.1.2"), port: 53 }] }]);
    });
  });
});
