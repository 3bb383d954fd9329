// The cluster DNS end to end in a 3-node lab: a `trellis-agent dns` per node (as trellis-dns.service runs it) on the
// registry in the real etcd, pods resolving through the resolv.conf their CNI result gave them (glibc, dig), the DNS
// Service's cluster IP through the proxies, the lab's stand-in upstream for other names, and the faults it must
// ride out — etcd stopped, a DNS server stopping, every agent stopped (the chapter's walkthrough).
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { runStatus } from "../lab/src/exec.js";
import { applyManifest, parseLabManifest } from "../lab/src/lab-apply.js";
import { startDns, stopDns, waitDnsReady } from "../lab/src/lab-dns.js";
import { startPodServer } from "../lab/src/lab-pods.js";
import { REPO_ROOT } from "../lab/src/paths.js";
import type { PodState } from "../lab/src/state.js";
import { timeUntil } from "./support/kernel-probe.js";
import { useLab } from "./support/lab-fixture.js";

describe("e2e cluster DNS (3 nodes, a DNS server on each)", function () {
  this.timeout(180_000);
  const fixture = useLab({ nodes: 3, backend: "vxlan", podsPerNode: 1, dns: true });
  const lab = (): typeof fixture.lab => fixture.lab;
  const pod = (nodeIndex: number): PodState =>
    lab().current.pods.find((p) => p.node === nodeIndex && p.owner === undefined) ??
    assert.fail(`no pod on n${nodeIndex}`);
  const cli = async (...args: string[]): Promise<string> => {
    const result = await lab().agentCli(args);
    if (result.code !== 0) throw new Error(`trellis-agent ${args.join(" ")} failed (${result.code}): ${result.stderr}`);
    return result.stdout;
  };
  /** dig inside a namespace; without @server it asks the pod's resolv.conf nameserver. */
  const dig = async (ns: string, ...args: string[]): Promise<string> => {
    const result = await runStatus("ip", ["netns", "exec", ns, "dig", "+time=2", "+tries=1", ...args]);
    return result.stdout;
  };
  const short = async (ns: string, ...args: string[]): Promise<string[]> =>
    (await dig(ns, "+short", ...args))
      .trim()
      .split("\n")
      .filter((l) => l !== "")
      .sort();
  const status = async (ns: string, ...args: string[]): Promise<string> =>
    /status: (\w+)/.exec(await dig(ns, ...args))?.[1] ?? "no answer";
  let web = "";

  before(async function () {
    this.timeout(60_000);
    for (const server of [pod(1), pod(2)]) await startPodServer(lab(), server);
    web =
      /cluster IP ([\d.]+)/.exec(
        await cli("service", "create", "web", "--port", "http=8000:80", "--selector", "app=web"),
      )?.[1] ?? "";
    await cli(
      "service",
      "create",
      "web-headless",
      "--cluster-ip",
      "None",
      "--port",
      "http=80",
      "--selector",
      "app=web",
    );
    // Every server has seen both.
    for (const { index } of lab().current.nodes) {
      const at = `@${lab().layout.node(index).ip}`;
      await timeUntil(
        `n${index} answers web-headless`,
        async () => (await short(pod(3).name, at, "web-headless.default.svc.cluster.local")).length === 2,
        5000,
      );
    }
  });

  it("gives each pod the resolv.conf of its CNI result: the node-local server, ClusterFirst's search list, ndots:5", async () => {
    const text = await readFile(`/etc/netns/${pod(3).name}/resolv.conf`, "utf8");
    assert.deepEqual(text.trim().split("\n"), [
      "nameserver 169.254.20.10",
      "search default.svc.cluster.local svc.cluster.local cluster.local",
      "options ndots:5",
    ]);
  });

  it("answers the Kubernetes DNS records: A, headless A, SRV, PTR, pod A, dns-version; NODATA vs NXDOMAIN; any case", async () => {
    const ns = pod(3).name;
    const ips = [pod(1).ip, pod(2).ip].sort();
    assert.deepEqual(await short(ns, "web.default.svc.cluster.local"), [web]);
    assert.deepEqual(await short(ns, "WEB.Default.SVC.Cluster.LOCAL"), [web], "case-insensitive");
    assert.deepEqual(
      await short(ns, "web-headless.default.svc.cluster.local"),
      ips,
      "a headless Service: its endpoints",
    );
    assert.deepEqual(await short(ns, "SRV", "_http._tcp.web.default.svc.cluster.local"), [
      "0 100 8000 web.default.svc.cluster.local.",
    ]);
    assert.deepEqual(await short(ns, "-x", web), ["web.default.svc.cluster.local."]);
    const podName = `${pod(1).ip.replace(/\./g, "-")}.default.pod.cluster.local`;
    assert.deepEqual(await short(ns, podName), [pod(1).ip]);
    assert.deepEqual(await short(ns, "TXT", "dns-version.cluster.local"), ['"1.0.1"']);
    // AAAA of an IPv4 Service: the name exists, so NOERROR with no answer and the zone's SOA, never NXDOMAIN.
    const aaaa = await dig(ns, "AAAA", "web.default.svc.cluster.local");
    assert.match(aaaa, /status: NOERROR/);
    assert.match(aaaa, /ANSWER: 0,/);
    assert.match(aaaa, /cluster\.local\.\s+\d+\s+IN\s+SOA/);
    assert.equal(await status(ns, "nope.default.svc.cluster.local"), "NXDOMAIN");
  });

  it("resolves short names through the search list (glibc), and other names through the node's upstream", async () => {
    const ns = pod(3).name;
    const getent = async (name: string): Promise<string> =>
      (await runStatus("ip", ["netns", "exec", ns, "getent", "hosts", name])).stdout.trim();
    assert.match(
      await getent("web"),
      new RegExp(`^${web.replace(/\./g, "\\.")}\\s+web\\.default\\.svc\\.cluster\\.local`),
    );
    assert.match(await getent("web.default"), new RegExp(`^${web.replace(/\./g, "\\.")}\\s`));
    assert.match(await getent("kube-dns.kube-system"), /^10\.254\.0\.10\s/);
    // The lab's stand-in upstream answers every name with 192.0.2.1: reached only through forwarding.
    assert.match(await getent("example.com"), /^192\.0\.2\.1\s/);
  });

  it("a Service created resolves within 1 s on every node; deleted, it is NXDOMAIN within 1 s", async () => {
    const servers = lab().current.nodes.map((n) => `@${lab().layout.node(n.index).ip}`);
    const t0 = performance.now();
    const ip =
      /cluster IP ([\d.]+)/.exec(
        await cli("service", "create", "fresh", "--port", "80", "--selector", "app=none"),
      )?.[1] ?? "";
    for (const at of servers) {
      await timeUntil(
        `fresh on ${at}`,
        async () => (await short(pod(3).name, at, "fresh.default.svc.cluster.local"))[0] === ip,
        1000,
      );
    }
    const created = performance.now() - t0;
    const t1 = performance.now();
    await cli("service", "delete", "fresh");
    for (const at of servers) {
      await timeUntil(
        `fresh gone on ${at}`,
        async () => (await status(pod(3).name, at, "fresh.default.svc.cluster.local")) === "NXDOMAIN",
        1000,
      );
    }
    const deleted = performance.now() - t1;
    assert.ok(created < 1000 && deleted < 1000, `created ${created.toFixed(0)} ms, deleted ${deleted.toFixed(0)} ms`);
  });

  it("the DNS Service's cluster IP keeps answering while a DNS server stops: it leaves the Service first", async () => {
    const ns = pod(3).name;
    const endpoints = async (): Promise<number> =>
      (
        (
          JSON.parse(await cli("service", "list", "-o", "json")) as {
            services: { name: string; endpoints: string[] }[];
          }
        ).services.find((s) => s.name === "kube-dns")?.endpoints ?? []
      ).length;
    assert.equal(await endpoints(), 3);
    let failed = 0;
    let asked = 0;
    let stopping = true;
    const loop = (async () => {
      while (stopping) {
        asked += 1;
        if ((await short(ns, "@10.254.0.10", "web.default.svc.cluster.local"))[0] !== web) failed += 1;
      }
    })();
    try {
      await new Promise((resolve) => setTimeout(resolve, 500));
      await stopDns(lab(), 1);
      await timeUntil("kube-dns down to 2 endpoints", async () => (await endpoints()) === 2, 2000);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    } finally {
      stopping = false;
      await loop;
      // Back whatever happened, so the tests after this one find three servers.
      await startDns(lab(), 1);
      await waitDnsReady(lab(), 1);
    }
    assert.equal(failed, 0, `${failed} of ${asked} queries to 10.254.0.10 failed`);
    await timeUntil("kube-dns back to 3 endpoints", async () => (await endpoints()) === 3, 5000);
  });

  it("etcd stopped: every server keeps answering from its last snapshot", async () => {
    await lab().stopEtcd();
    try {
      await new Promise((resolve) => setTimeout(resolve, 2000));
      for (const { index } of lab().current.nodes) {
        assert.deepEqual(
          await short(pod(3).name, `@${lab().layout.node(index).ip}`, "web.default.svc.cluster.local"),
          [web],
          `n${index}`,
        );
      }
    } finally {
      await lab().startEtcdAgain();
    }
  });

  it("the chapter's walkthrough: nginx-service:8000 by name from another node's pod, also with every agent stopped", async () => {
    const manifest = parseLabManifest(await readFile(join(REPO_ROOT, "lab/examples/nginx.yaml"), "utf8"), "nginx.yaml");
    const lines = await applyManifest(lab(), manifest);
    assert.equal(lines[0], "deployment.apps/nginx-deployment created");
    assert.match(lines[1] ?? "", /^service\/nginx-service created/);
    const nginx = lab().current.pods.filter((p) => p.owner === "default/nginx-deployment");
    assert.equal(nginx.length, 2);
    assert.equal(new Set(nginx.map((p) => p.node)).size, 2, "the replicas are on two nodes");
    const client = pod(3);
    assert.ok(!nginx.some((p) => p.node === client.node), "the client is on a third node");
    const curl = (url: string): ReturnType<typeof runStatus> =>
      runStatus("ip", ["netns", "exec", client.name, "curl", "-sS", "--max-time", "5", url]);
    await timeUntil(
      "nginx-service:8000 answers",
      async () => (await curl("http://nginx-service:8000/")).code === 0,
      10_000,
    );
    for (const p of nginx)
      assert.match((await curl(`http://${p.ip}:80/`)).stdout, new RegExp(`^hello from ${p.kube?.name ?? "?"} `));
    const answered = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const out = (await curl("http://nginx-service.default.svc.cluster.local:8000/")).stdout;
      answered.add(/^hello from (\S+)/.exec(out)?.[1] ?? `failed: ${out}`);
    }
    assert.deepEqual([...answered].sort(), nginx.map((p) => p.kube?.name ?? "").sort(), "both replicas answer by name");
    for (const { index } of lab().current.nodes) await lab().killAgent(index, "SIGTERM");
    try {
      for (let i = 0; i < 10; i++) {
        const result = await curl("http://nginx-service:8000/");
        assert.equal(result.code, 0, `with every agent stopped, request ${i}: ${result.stderr}`);
      }
    } finally {
      for (const { index } of lab().current.nodes) await lab().startAgent(index);
      await Promise.all(lab().current.nodes.map((n) => lab().waitReady(n.index)));
    }
  });
});
