// The proxy's transactions against the real nftables in a throwaway namespace: the full first sync, incremental
// ones (an endpoint goes, the last one goes, affinity, UDP), the delayed deletion of retired chains, adopting a table
// a previous run left (no gap: it is never missing between syncs), and removal.
import assert from "node:assert/strict";
import { processRunner, type CommandRunner } from "#lib/command.js";
import { parseCidr, parseIpv4 } from "#lib/ipv4.js";
import { encodePodRecord } from "#lib/pod-record.js";
import { runStatus } from "../../lab/src/exec.js";
import { NamespaceSet } from "../../lab/src/netns.js";
import { NftProxyTable } from "../src/proxy/nft-proxy-table.js";
import { ProxyPlanner, STALE_DELETE_DELAY_MS } from "../src/proxy/proxy-plan.js";
import { serviceProgram, type ServiceProgram } from "../src/proxy/service-rules.js";
import { ServiceCatalog } from "../src/services/catalog.js";
import { RegistryLayout } from "../src/services/registry-layout.js";

const layout = new RegistryLayout("/trellis");
const podNetwork = parseCidr("172.30.0.0/16") ?? assert.fail();

/** nft inside a namespace: the real tool, where nothing else lives. */
function runnerIn(ns: string): CommandRunner {
  return { run: (file, args, input) => processRunner.run("ip", ["netns", "exec", ns, file, ...args], input) };
}

function programs(
  services: { name: string; ip: string; backends: string[]; affinity?: boolean; udp?: boolean }[],
): Map<string, ServiceProgram> {
  const catalog = new ServiceCatalog(layout);
  const all = new Map<string, ServiceProgram>();
  for (const s of services) {
    const spec = {
      clusterIP: s.ip,
      selector: { app: s.name },
      ports: [{ port: s.udp === true ? 53 : 80, targetPort: 8080, protocol: s.udp === true ? "UDP" : "TCP" }],
      ...(s.affinity === true ? { sessionAffinity: "ClientIP" } : {}),
    };
    catalog.apply({
      type: "put",
      entry: {
        key: `/trellis/services/default/${s.name}`,
        value: JSON.stringify({ metadata: { name: s.name }, spec }),
        modRevision: "1",
        lease: undefined,
      },
    });
    for (const [n, ip] of s.backends.entries()) {
      catalog.apply({
        type: "put",
        entry: {
          key: `/trellis/pods/172.30.1.0-24/${s.name}${n}/eth0`,
          value: encodePodRecord({
            namespace: "default",
            name: `${s.name}${n}`,
            labels: { app: s.name },
            ip: parseIpv4(ip) ?? 0,
            containerId: `${s.name}${n}`,
            ifname: "eth0",
          }),
          modRevision: "1",
          lease: undefined,
        },
      });
    }
    const resolved = catalog.resolve(`default/${s.name}`, () => true);
    if (resolved !== undefined) all.set(`default/${s.name}`, serviceProgram(resolved));
  }
  return all;
}

describe("proxy: transactions on the real nftables (throwaway namespace)", function () {
  this.timeout(30_000);
  const namespaces = new NamespaceSet();
  let ns = "";
  let table: NftProxyTable;
  const list = async (): Promise<string> =>
    (await runStatus("ip", ["netns", "exec", ns, "nft", "list", "table", "ip", "trellis-services"])).stdout;

  before(async () => {
    ns = await namespaces.add();
    table = new NftProxyTable(runnerIn(ns));
  });
  after(async () => {
    await namespaces.dispose();
  });

  it("applies a full sync, then only the changes, and deletes retired chains a second later", async () => {
    let now = 0;
    const planner = new ProxyPlanner(() => now);
    planner.adopt(await table.read());
    let all = programs([
      { name: "web", ip: "10.254.0.20", backends: ["172.30.1.2", "172.30.1.3"] },
      { name: "dns", ip: "10.254.0.10", backends: ["172.30.1.9"], udp: true },
      { name: "sticky", ip: "10.254.0.30", backends: ["172.30.1.4", "172.30.1.5"], affinity: true },
    ]);
    const full = planner.plan(new Map(), () => all, podNetwork);
    await table.apply(full.script);
    planner.committed(full);
    let text = await list();
    assert.match(text, /10\.254\.0\.20 \. tcp \. 80 : goto pick-tcp-2/);
    assert.match(
      text,
      /10\.254\.0\.20 \. 80 \. 0 : 172\.30\.1\.2 \. 8080,\s+10\.254\.0\.20 \. 80 \. 1 : 172\.30\.1\.3 \. 8080/,
    );
    assert.match(text, /10\.254\.0\.10 \. udp \. 53 : goto pick-udp-1/);
    assert.match(text, /map endpoints-udp \{[^}]*10\.254\.0\.10 \. 53 \. 0 : 172\.30\.1\.9 \. \d+/);
    assert.match(
      text,
      /chain pick-tcp-2 \{\s*dnat ip to ip daddr \. tcp dport \. numgen random mod 2 map @endpoints-tcp\s*\}/,
    );
    assert.match(text, /chain ep\/default\/sticky\/tcp\/80\/172\.30\.1\.5\/8080/);
    assert.match(text, /set aff\/default\/sticky\/tcp\/80\/172\.30\.1\.4\/8080/);
    assert.match(text, /ct status dnat ip saddr \. ip daddr @hairpin-endpoints masquerade/);
    for (const address of ["172.30.1.2", "172.30.1.3", "172.30.1.4", "172.30.1.5", "172.30.1.9"])
      assert.ok(text.includes(`${address} . ${address}`), `hairpin pair of ${address}`);

    // web loses an endpoint, sticky loses its only one, dns goes.
    all = programs([
      { name: "web", ip: "10.254.0.20", backends: ["172.30.1.2"] },
      { name: "sticky", ip: "10.254.0.30", backends: [], affinity: true },
    ]);
    const change = planner.plan(
      new Map<string, ServiceProgram | undefined>([
        ["default/web", all.get("default/web")],
        ["default/sticky", all.get("default/sticky")],
        ["default/dns", undefined],
      ]),
      () => assert.fail("incremental"),
      podNetwork,
    );
    assert.ok(!change.full);
    await table.apply(change.script);
    planner.committed(change);
    text = await list();
    assert.match(text, /no-endpoint-services[\s\S]*10\.254\.0\.30 \. tcp \. 80 : goto reject-chain/);
    assert.doesNotMatch(text, /10\.254\.0\.10 \. (udp \. )?53/);
    assert.match(text, /10\.254\.0\.20 \. tcp \. 80 : goto pick-tcp-1/);
    assert.doesNotMatch(text, /10\.254\.0\.20 \. 80 \. 1 :/, "the endpoint that went is no element");
    assert.match(
      text,
      /chain ep\/default\/sticky\/tcp\/80\/172\.30\.1\.5\/8080 \{\s*\}/,
      "retired: flushed, still there",
    );
    assert.ok(
      !text.includes("172.30.1.3 . 172.30.1.3") && !text.includes("172.30.1.9 . 172.30.1.9"),
      "hairpin pairs of endpoints gone",
    );
    assert.ok(text.includes("172.30.1.2 . 172.30.1.2"), "web still has 172.30.1.2");
    now += STALE_DELETE_DELAY_MS;
    const cleanup = planner.plan(new Map(), () => assert.fail("incremental"), podNetwork);
    await table.apply(cleanup.script);
    planner.committed(cleanup);
    text = await list();
    assert.doesNotMatch(text, /ep\/default\/sticky/);
    assert.doesNotMatch(text, /svc\/default\/dns/);
    assert.doesNotMatch(text, /aff\/default\/sticky/);
    assert.equal(planner.pendingDeletes, false);
  });

  it("a restart adopts the table: its full sync replaces it in one transaction, retiring what is no longer wanted", async () => {
    // What a previous run left: web's rules, and a chain of a Service deleted while the agent was down.
    await runStatus("ip", [
      "netns",
      "exec",
      ns,
      "nft",
      "add",
      "chain",
      "ip",
      "trellis-services",
      "svc/default/gone/tcp/1",
    ]);
    let now = 0;
    const planner = new ProxyPlanner(() => now);
    planner.adopt(await table.read());
    const all = programs([{ name: "web", ip: "10.254.0.20", backends: ["172.30.1.2", "172.30.1.5"] }]);
    const full = planner.plan(new Map(), () => all, podNetwork);
    assert.match(
      full.script,
      /^flush chain ip trellis-services svc\/default\/gone\/tcp\/1$/m,
      "the previous run's chain is retired",
    );
    assert.doesNotMatch(full.script, /delete table|flush table/, "never a moment without the table's rules");
    await table.apply(full.script);
    planner.committed(full);
    now += STALE_DELETE_DELAY_MS;
    const cleanup = planner.plan(new Map(), () => all, podNetwork);
    await table.apply(cleanup.script);
    planner.committed(cleanup);
    const text = await list();
    assert.match(text, /10\.254\.0\.20 \. 80 \. 1 : 172\.30\.1\.5 \. 8080/);
    assert.doesNotMatch(text, /default\/gone/);
  });

  it("a rejected transaction changes nothing, and cleanup removes the table", async () => {
    const before = await list();
    await assert.rejects(
      table.apply("add rule ip trellis-services services bogus\n"),
      /nft -f - \(the service rules\) failed/,
    );
    assert.equal(await list(), before);
    await table.remove();
    assert.equal(await table.read(), undefined);
    await table.remove(); // absent is fine
  });
});
