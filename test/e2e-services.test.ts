// Services end to end in a 3-node lab: the registry through the CLI (real etcd), the agents' proxies programming
// the real kernel, traffic from pods, nodes and the endpoints themselves (hairpin), and the faults the rules must
// survive — an agent killed or restarted under load, etcd stopped, a malformed value — until `cleanup` removes them.
import assert from "node:assert/strict";
import { runStatus } from "../lab/src/exec.js";
import { addPods, removePod, startPodServer } from "../lab/src/lab-pods.js";
import { answeredBy, probeIn } from "../lab/src/probe.js";
import type { PodState } from "../lab/src/state.js";
import { timeUntil } from "./support/kernel-probe.js";
import { useLab } from "./support/lab-fixture.js";

describe("e2e services: cluster IPs served by the kernel (3 nodes)", function () {
  this.timeout(180_000);
  const fixture = useLab({ nodes: 3, backend: "vxlan", podsPerNode: 2 });
  const lab = (): typeof fixture.lab => fixture.lab;
  const node = (i: number): string => lab().layout.node(i).ns;
  const pod = (nodeIndex: number, n: number): PodState =>
    lab().current.pods.find((p) => p.node === nodeIndex && p.name.endsWith(`-n${nodeIndex}-p${n}`)) ??
    assert.fail(`no pod ${n} on n${nodeIndex}`);
  const cli = async (...args: string[]): Promise<string> => {
    const result = await lab().agentCli(args);
    if (result.code !== 0) throw new Error(`trellis-agent ${args.join(" ")} failed (${result.code}): ${result.stderr}`);
    return result.stdout;
  };
  const create = async (...args: string[]): Promise<string> =>
    /cluster IP ([\d.]+)/.exec(await cli("service", "create", ...args))?.[1] ?? assert.fail("no cluster IP");
  /** Waits until a probe from `ns` is answered by `expected` backends (each at least once in 20 requests). */
  const answeredWithin = async (ns: string, url: string, expected: number): Promise<Record<string, number>> => {
    let by: Record<string, number> = {};
    await timeUntil(
      `${url} answered by ${expected} backend(s) from ${ns}`,
      async () => {
        by = answeredBy(await probeIn(ns, ["http", url, "20"]));
        return Object.keys(by).length === expected;
      },
      10_000,
    );
    return by;
  };
  let web = "";

  before(async function () {
    this.timeout(60_000);
    for (const server of [pod(1, 1), pod(2, 1)]) await startPodServer(lab(), server);
    web = await create("web", "--port", "8000:80", "--selector", "app=web");
  });

  it("creates, lists, shows and deletes through the CLI; a requested IP outside the range, or taken, is refused naming both", async () => {
    assert.match(
      await cli("service", "list"),
      new RegExp(
        `default\\s+web\\s+${web.replace(/\./g, "\\.")}\\s+8000/TCP\\s+172\\.30\\.\\d+\\.\\d+:80,172\\.30\\.\\d+\\.\\d+:80\\s+\\d+s`,
      ),
    );
    const shown = await cli("service", "show", "web", "-o", "json");
    assert.equal((JSON.parse(shown) as { spec: { clusterIP: string } }).spec.clusterIP, web);
    assert.equal(
      await create("fixed", "--port", "80", "--cluster-ip", "10.254.200.1", "--endpoint", "172.30.250.9:80"),
      "10.254.200.1",
    );
    const taken = await lab().agentCli(["service", "create", "other", "--port", "80", "--cluster-ip", "10.254.200.1"]);
    assert.equal(taken.code, 6, taken.stderr);
    assert.match(
      taken.stderr,
      /spec\.clusterIP 10\.254\.200\.1 is taken by default\/fixed \(range 10\.254\.0\.0\/16\); nothing written/,
    );
    const outside = await lab().agentCli(["service", "create", "other", "--port", "80", "--cluster-ip", "10.99.0.1"]);
    assert.equal(outside.code, 2, outside.stderr);
    assert.match(
      outside.stderr,
      /spec\.clusterIP "10\.99\.0\.1" is invalid: must be inside the cluster IP range 10\.254\.0\.0\/16/,
    );
    const bad = await lab().agentCli(["service", "create", "Bad_Name", "--port", "80"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /metadata\.name "Bad_Name" is invalid: must be a DNS-1035 label/);
    await cli("service", "delete", "fixed");
    assert.doesNotMatch(await cli("service", "list"), /fixed/);
    assert.equal((await lab().agentCli(["service", "delete", "fixed"])).code, 5, "not found");
  });

  it("50 concurrent creates get 50 distinct cluster IPs", async () => {
    const outs = await Promise.all(
      Array.from({ length: 50 }, (_, n) =>
        lab().agentCli(["service", "create", `bulk-${n}`, "--port", "80", "--selector", `app=bulk-${n}`]),
      ),
    );
    for (const out of outs) assert.equal(out.code, 0, out.stderr);
    const ips = outs.map((out) => /cluster IP ([\d.]+)/.exec(out.stdout)?.[1]);
    assert.equal(new Set(ips).size, 50, ips.join(" "));
    const listed = JSON.parse(await cli("service", "list", "-o", "json")) as {
      services: { name: string; clusterIP: string }[];
    };
    assert.equal(listed.services.filter((s) => s.name.startsWith("bulk-")).length, 50);
  });

  it("answers from a pod on another node, from a node, and from an endpoint itself (hairpin); both endpoints serve, pod source IPs survive", async () => {
    const url = `http://${web}:8000/`;
    const client = pod(3, 2);
    const fromPod = await answeredWithin(client.name, url, 2);
    assert.deepEqual(Object.keys(fromPod).sort(), [pod(1, 1).name, pod(2, 1).name].sort());
    const answer = await probeIn(client.name, ["http", url, "1"]);
    assert.match(
      Object.keys(answer.answers)[0] ?? "",
      new RegExp(`you are ${client.ip.replace(/\./g, "\\.")}$`),
      "no NAT between pods",
    );
    const fromNode = await probeIn(node(3), ["http", url, "10"]);
    assert.equal(fromNode.failed, 0, JSON.stringify(fromNode.errors));
    const hairpin = await probeIn(pod(1, 1).name, ["http", url, "20"]);
    assert.equal(hairpin.failed, 0, JSON.stringify(hairpin.errors));
    assert.ok(
      (answeredBy(hairpin)[pod(1, 1).name] ?? 0) > 0,
      `the endpoint reached itself: ${JSON.stringify(answeredBy(hairpin))}`,
    );
  });

  it("a Service without endpoints refuses at once (connection refused, not a timeout)", async () => {
    const empty = await create("empty", "--port", "9000:80", "--selector", "app=nobody");
    await timeUntil(
      "the empty Service is refused",
      async () => (await probeIn(pod(3, 2).name, ["connect", empty, "9000"])).errors.ECONNREFUSED === 1,
      5000,
    );
    const probe = await probeIn(pod(3, 2).name, ["connect", empty, "9000"]);
    assert.deepEqual(probe.errors, { ECONNREFUSED: 1 });
    assert.ok(probe.ms < 500, `refused after ${Math.round(probe.ms)} ms`);
  });

  it("ClientIP affinity sends a client to the same endpoint every time", async () => {
    const sticky = await create(
      "sticky",
      "--port",
      "8001:80",
      "--selector",
      "app=web",
      "--session-affinity",
      "ClientIP",
    );
    await answeredWithin(pod(3, 2).name, `http://${sticky}:8001/`, 1);
    const by = answeredBy(await probeIn(pod(3, 2).name, ["http", `http://${sticky}:8001/`, "30"]));
    assert.equal(Object.keys(by).length, 1, JSON.stringify(by));
  });

  it("an endpoint pod deleted: no new connection goes to it; UDP flows to it are moved by deleting their conntrack entries", async () => {
    const pair = [
      ...(await addPods(lab(), 1, 1, () => ({ app: "pair" }))),
      ...(await addPods(lab(), 2, 1, () => ({ app: "pair" }))),
    ];
    for (const server of pair) await startPodServer(lab(), server);
    const tcp = await create("pair", "--port", "8002:80", "--selector", "app=pair");
    const udp = await create("pair-udp", "--port", "5353:80/udp", "--selector", "app=pair");
    await answeredWithin(pod(3, 2).name, `http://${tcp}:8002/`, 2);
    // One UDP flow (a fixed source port): every datagram goes to the endpoint conntrack picked first.
    const before = answeredBy(await probeIn(pod(3, 2).name, ["udp", udp, "5353", "5", "40000"]));
    assert.equal(Object.keys(before).length, 1, JSON.stringify(before));
    const victim = pair.find((p) => p.name === Object.keys(before)[0]) ?? assert.fail();
    await removePod(lab(), victim.name);
    await answeredWithin(pod(3, 2).name, `http://${tcp}:8002/`, 1);
    const after = await probeIn(pod(3, 2).name, ["udp", udp, "5353", "5", "40000"]);
    assert.equal(after.failed, 0, `the flow was moved off the deleted endpoint: ${JSON.stringify(after)}`);
    assert.ok(!(victim.name in answeredBy(after)));
    const tcpAfter = answeredBy(await probeIn(pod(3, 2).name, ["http", `http://${tcp}:8002/`, "20"]));
    assert.deepEqual(
      Object.keys(tcpAfter),
      pair.filter((p) => p !== victim).map((p) => p.name),
    );
  });

  it("a malformed value in etcd is skipped with a warning on every node; the other Services keep working", async () => {
    await lab().etcdctl("put", "/trellis/services/default/broken", '{"spec":');
    for (const i of [1, 2, 3])
      await timeUntil(`n${i} to report the broken value`, async () =>
        /skipping a registry value that cannot be used key=\/trellis\/services\/default\/broken/.test(
          await lab().agentLog(i),
        ),
      );
    assert.equal((await probeIn(pod(3, 2).name, ["http", `http://${web}:8000/`, "5"])).failed, 0);
    await lab().etcdctl("del", "/trellis/services/default/broken");
  });

  it("etcd stopped: the rules stay as they are, and the Services answer", async () => {
    // Affinity set elements carry a countdown ("expires 2h59m"), which moves on its own; everything else must not.
    const rules = async (): Promise<string> =>
      (await runStatus("ip", ["netns", "exec", node(3), "nft", "list", "table", "ip", "trellis-services"])).stdout
        .split("\n")
        .filter((line) => !line.includes("expires"))
        .join("\n");
    // Chains retired by the previous test are deleted a second after their last jump went: start from settled rules.
    let before = await rules();
    for (let settled = 0; settled < 3;) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      const now = await rules();
      settled = now === before ? settled + 1 : 0;
      before = now;
    }
    await lab().stopEtcd();
    try {
      await new Promise((resolve) => setTimeout(resolve, 3000));
      assert.equal(await rules(), before);
      assert.equal((await probeIn(pod(3, 2).name, ["http", `http://${web}:8000/`, "10"])).failed, 0);
    } finally {
      await lab().startEtcdAgain();
    }
  });

  it("an agent killed with SIGKILL leaves the rules: its node's pods still reach the Service", async () => {
    await lab().killAgent(3, "SIGKILL");
    try {
      assert.equal((await probeIn(pod(3, 2).name, ["http", `http://${web}:8000/`, "10"])).failed, 0);
    } finally {
      await lab().startAgent(3);
      await lab().waitReady(3);
    }
  });

  it("an agent restarted under a continuous request loop: 0 failed requests (the restart adopts the rules, no flush-then-fill)", async () => {
    const loop = probeIn(pod(3, 2).name, ["http-for", `http://${web}:8000/`, "8000", "20"]);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await lab().killAgent(3, "SIGTERM");
    await lab().startAgent(3);
    await lab().waitReady(3);
    const summary = await loop;
    assert.ok(summary.ok > 100, `${summary.ok} requests answered`);
    assert.equal(summary.failed, 0, JSON.stringify(summary.errors));
  });

  it("`trellis-agent cleanup` (agent stopped) removes the service table", async () => {
    await lab().killAgent(3, "SIGTERM");
    const node3 = lab().layout.node(3);
    const out = await lab().agentCli(["cleanup"], node3.ns, lab().agentEnv(node3));
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /service rules: yes/);
    assert.notEqual(
      (await runStatus("ip", ["netns", "exec", node(3), "nft", "list", "table", "ip", "trellis-services"])).code,
      0,
    );
  });
});
