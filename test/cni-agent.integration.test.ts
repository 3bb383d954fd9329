// The shim → agent path with real runtimes' habits and real faults: a caller whose namespace pin only its own mount
// namespace sees, a target namespace that is the caller's own, an agent that stops answering, and an agent whose
// thread cannot come back from a pod's namespace. The real executables throughout (the plugin as a runtime runs it,
// the agent as its unit runs it); fault injection through LD_PRELOAD, never a test hook in trellis itself.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ipIn } from "../lab/src/netns.js";
import { REPO_ROOT } from "../lab/src/paths.js";
import { waitFor } from "../lab/src/ports.js";
import { SHIM_READY_TIMEOUT_MS } from "../cni-plugin/src/service/protocol.js";
import { CNI_BIN, useBareAgentNode } from "./support/bare-agent.js";

const CNI_ENV = (pod: string, id = pod): Record<string, string> => ({
  CNI_CONTAINERID: id,
  CNI_NETNS: `/run/netns/${pod}`,
  CNI_IFNAME: "eth0",
});

describe("cni through the agent: runtimes' namespaces and a faulty agent (real executables)", function () {
  this.timeout(120_000);
  const node = useBareAgentNode();
  let preload = "";
  let scratch = "";

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "trellis-cni-agent-"));
    preload = join(scratch, "fail-setns-home.so");
    const built = spawnSync(
      "cc",
      ["-shared", "-fPIC", "-O2", "-o", preload, join(REPO_ROOT, "test/support/fail-setns-home.c"), "-ldl"],
      { encoding: "utf8" },
    );
    assert.equal(built.status, 0, built.stderr);
    await node.start();
  });
  after(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it("serves a caller whose pod namespace is pinned only in its own mount namespace (podman, a private /tmp): 0 fallbacks", async () => {
    const fallbacks = await node.metric("trellis_cni_fallbacks_total");
    // The repro: a private mount namespace with its own /run/netns, where the pod's pin lives.
    const script = [
      "set -e",
      "mount --make-rprivate /",
      "mkdir -p /run/netns",
      "mount -t tmpfs t /run/netns",
      "ip netns add p1",
      `${CNI_BIN} < "$CONF"`,
      'echo "ADDRESS $(ip -n p1 -4 -o addr show dev eth0 | tr -s " " | cut -d" " -f4)"',
      `CNI_COMMAND=DEL ${CNI_BIN} < "$CONF"`,
      'echo "LINKS $(ip -n p1 -o link show | wc -l)"',
    ].join("\n");
    const conf = join(scratch, "conf.json");
    await writeFile(conf, JSON.stringify(node.config()));
    const out = await node.cni("ADD", { ...CNI_ENV("p1", "private-mnt"), CONF: conf }, node.config(), [
      "unshare",
      "-m",
      "sh",
      "-c",
      script,
    ]);
    assert.equal(out.code, 0, `${out.stdout}\n${out.stderr}`);
    const result = JSON.parse(out.stdout.split("\n")[0] ?? "{}") as { ips?: { address: string }[] };
    const address = result.ips?.[0]?.address ?? "";
    assert.match(address, /^172\.30\.5\.\d+\/24$/, out.stdout);
    assert.match(out.stdout, new RegExp(`^ADDRESS ${address.replace(/\./g, "\\.")}$`, "m"));
    assert.match(out.stdout, /LINKS 1$/m, "DEL removed the pod's eth0");
    assert.equal(await node.metric("trellis_cni_fallbacks_total"), fallbacks, "served by the agent, no fallback");
    assert.deepEqual(
      (await readdir(join(node.dir, "ipam"))).filter((n) => /^\d/.test(n)),
      [],
      "the address was freed",
    );
  });

  it("refuses a target namespace that is the caller's own (here the node's), changing nothing on the node", async () => {
    const routes = async (): Promise<string[]> =>
      (await ipIn(node.ns, "route", "show")).stdout.split("\n").map((r) => r.replace(/ linkdown/, "").trim());
    const before = await routes();
    const out = await node.cni("ADD", {
      CNI_CONTAINERID: "own",
      CNI_NETNS: `/run/netns/${node.ns}`,
      CNI_IFNAME: "eth7",
    });
    assert.equal(out.code, 1, out.stdout);
    const answer = JSON.parse(out.stdout) as { code: number; msg: string };
    assert.equal(answer.code, 4);
    assert.match(answer.msg, /is the caller's own network namespace/);
    assert.deepEqual(await routes(), before, "no default route via cni0, no other route");
    assert.doesNotMatch((await ipIn(node.ns, "link", "show")).stdout, /eth7/);
  });

  it("a stopped agent: the shim runs the standalone plugin within its bound; resumed, the agent does nothing for that request", async () => {
    const pod = await node.namespaces.add();
    const abandoned = await node.metric("trellis_cni_abandoned_total");
    node.signal("SIGSTOP");
    let elapsed: number;
    let out: { code: number; stdout: string };
    try {
      const started = performance.now();
      out = await node.cni("ADD", CNI_ENV(pod));
      elapsed = performance.now() - started;
    } finally {
      node.signal("SIGCONT");
    }
    assert.equal(out.code, 0, out.stdout);
    assert.ok(
      elapsed >= SHIM_READY_TIMEOUT_MS && elapsed < SHIM_READY_TIMEOUT_MS + 3000,
      `the standalone plugin answered after ${Math.round(elapsed)} ms`,
    );
    await waitFor(
      "the agent to notice the abandoned request",
      async () => (await node.metric("trellis_cni_abandoned_total")) === abandoned + 1,
    );
    assert.match(
      await readFile(node.log, "utf8"),
      /cni request abandoned: its shim gave up and ran the standalone plugin reason=the shim hung up before confirming/,
    );
    const links = (await ipIn(pod, "-o", "link", "show")).stdout.trim().split("\n");
    assert.equal(links.length, 2, `lo and one eth0: ${links.join(" | ")}`);
    assert.equal((await readdir(join(node.dir, "ipam"))).filter((n) => /^\d/.test(n)).length, 1, "one reservation");
    assert.equal((await node.cni("DEL", CNI_ENV(pod))).code, 0);
  });

  it("a thread that cannot return from a pod's namespace stops the agent (exit 9, a log line); the pod is still wired, standalone", async () => {
    await node.stop();
    await node.start({ LD_PRELOAD: preload });
    const pod = await node.namespaces.add();
    const out = await node.cni("ADD", CNI_ENV(pod));
    assert.equal(out.code, 0, out.stdout);
    await waitFor("the agent to exit", () => !node.running, 10_000);
    const log = await readFile(node.log, "utf8");
    assert.match(log, /stopping: a thread could not return from a pod's network namespace .*exitCode=9/);
    assert.match(log, /^agent exited with 9$/m);
    assert.match((await ipIn(pod, "-4", "-o", "addr", "show", "dev", "eth0")).stdout, /inet 172\.30\.5\.\d+\/24/);
    await node.start();
    assert.equal((await node.cni("DEL", CNI_ENV(pod))).code, 0);
  });

  it("the standalone plugin in the same fault answers with the spec's error object and exits 1", async () => {
    const pod = await node.namespaces.add();
    const out = await node.cni("ADD", { ...CNI_ENV(pod), LD_PRELOAD: preload }, node.config({ agentSocket: "" }));
    assert.equal(out.code, 1, out.stdout);
    const answer = JSON.parse(out.stdout) as { cniVersion: string; code: number; msg: string };
    assert.equal(answer.cniVersion, "1.0.0");
    assert.equal(answer.code, 999);
    assert.match(answer.msg, /could not return from network namespace .* to this process's own: stopping/);
    assert.doesNotMatch(out.stdout + out.stderr, /\n\s+at /);
  });
});
