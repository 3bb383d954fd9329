// Health, readiness, metrics and status of a running agent, and how secrets stay out of sight.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { runStatus, start } from "../lab/src/exec.js";
import { httpGetIn } from "../lab/src/http-get.js";
import { AGENT_BIN } from "../lab/src/paths.js";
import { timeUntil } from "./support/kernel-probe.js";
import { useLab } from "./support/lab-fixture.js";

const READYZ = "http://127.0.0.1:9808/readyz";

describe("observability: /healthz, /readyz, /metrics, status, logs", function () {
  this.timeout(180_000);
  const fixture = useLab({ nodes: 2, backend: "vxlan" });
  const ns = (i: number): string => fixture.lab.layout.node(i).ns;

  async function readyz(i: number): Promise<{ status: number; reasons: string[] }> {
    const answer = await httpGetIn(ns(i), READYZ);
    return {
      status: answer.status,
      reasons: answer.status === 0 ? [answer.body] : (JSON.parse(answer.body) as { reasons: string[] }).reasons,
    };
  }

  it("/readyz: not ready before the lease, ready after convergence, not ready while the etcd watch is down, ready again", async () => {
    const lab = fixture.lab;
    const node = await lab.addNode(undefined, undefined, false);
    await lab.stopEtcd();
    await lab.startAgent(node.index);
    await timeUntil(
      "healthz answers",
      async () => (await httpGetIn(node.ns, "http://127.0.0.1:9808/healthz")).status === 200,
      15_000,
    );
    assert.equal((await readyz(node.index)).status, 503);
    // The root cause alone, not the five parts that wait for it (once the first request to etcd has failed).
    await timeUntil(
      "the cause named",
      async () =>
        /^network config at \/coreos\.com\/network\/config cannot be read: etcd is unreachable at /.test(
          (await readyz(node.index)).reasons[0] ?? "",
        ),
      15_000,
    );
    const before = await readyz(node.index);
    assert.equal(before.status, 503);
    assert.equal(before.reasons.length, 1, before.reasons.join("; "));
    await lab.startEtcdAgain();
    await timeUntil("ready after the lease", async () => (await readyz(node.index)).status === 200, 30_000);

    await lab.stopEtcd();
    await timeUntil(
      "not ready while etcd is down",
      async () => {
        const r = await readyz(1);
        return r.status === 503 && r.reasons.some((reason) => reason.startsWith("etcd watch is down"));
      },
      20_000,
    );
    await lab.startEtcdAgain();
    await timeUntil(
      "ready again",
      async () => (await readyz(1)).status === 200 && (await readyz(node.index)).status === 200,
      30_000,
    );
  });

  it("/metrics parses as Prometheus text and counts a repair made by hand", async () => {
    const families = async (): Promise<ReturnType<typeof parsePrometheusTextFormat>> =>
      parsePrometheusTextFormat((await httpGetIn(ns(1), "http://127.0.0.1:9808/metrics")).body);
    const repairs = async (): Promise<number> =>
      Number(
        (await families())
          .find((f) => f.name === "trellis_repairs_total")
          ?.metrics.find((m) => m.labels?.kind === "route")?.value ?? 0,
      );
    const first = await families();
    for (const name of [
      "trellis_build_info",
      "trellis_lease_state",
      "trellis_lease_expiry_seconds",
      "trellis_peers_known",
      "trellis_peers_programmed",
      "trellis_reconcile_passes_total",
      "trellis_netlink_operation_seconds",
      "trellis_etcd_requests_total",
      "trellis_etcd_watch_restarts_total",
      "trellis_ready",
    ]) {
      assert.ok(
        first.some((f) => f.name === name),
        `missing ${name}`,
      );
    }
    assert.equal(
      first.find((f) => f.name === "trellis_lease_state")?.metrics.find((m) => m.labels?.state === "held")?.value,
      "1",
    );
    assert.ok(Number(first.find((f) => f.name === "trellis_lease_expiry_seconds")?.metrics[0]?.value) > 80_000);
    assert.equal(first.find((f) => f.name === "trellis_netlink_operation_seconds")?.type, "HISTOGRAM");
    assert.ok(
      Number(first.find((f) => f.name === "trellis_etcd_watch_restarts_total")?.metrics[0]?.value ?? 0) >= 1,
      "the etcd outage above restarted the watch",
    );
    const before = await repairs();
    const { stdout } = await runStatus("ip", ["-n", ns(1), "route", "show", "proto", "145"]);
    const dst = stdout.split(" ")[0] ?? "";
    await runStatus("ip", ["-n", ns(1), "route", "del", dst]);
    await timeUntil("repair counted", async () => (await repairs()) === before + 1, 5000);
  });

  it("`status` shows this node's readiness and whether each peer's route is programmed", async () => {
    const table = await fixture.lab.status(1);
    assert.match(table, /^local agent: ready \(http:\/\/127\.0\.0\.1:9808\)\n/);
    assert.match(table, /ROUTE/);
    assert.match(table, /10\.42\.0\.12 .* programmed/);
    assert.match(table, /^\*.*\(this node\)/m);
    const json = JSON.parse(await fixture.lab.status(1, true)) as {
      localAgent: { ready: boolean };
      leases: { publicIp: string; programmed: boolean | null }[];
    };
    assert.equal(json.localAgent.ready, true);
    assert.equal(json.leases.find((l) => l.publicIp === "10.42.0.12")?.programmed, true);
  });

  it("never shows the etcd password: not in --print-config, not in the logs", async () => {
    const secret = "s3cr3t-Pa55-word";
    const printed = await runStatus(AGENT_BIN, [
      "run",
      "--print-config",
      "--etcd-username",
      "root",
      "--etcd-password",
      secret,
    ]);
    assert.equal(printed.code, 0, printed.stderr);
    assert.doesNotMatch(printed.stdout + printed.stderr, new RegExp(secret));
    assert.match(printed.stdout, /"etcd-password": \{\n\s+"value": "\*{8}",\n\s+"source": "flag"/);
    // A daemon whose credentials are refused (the lab etcd has no auth enabled) logs the failure, not the password.
    const node = await fixture.lab.addNode(undefined, undefined, false);
    const agent = start(
      "agent",
      "ip",
      ["netns", "exec", node.ns, AGENT_BIN, "run", "--healthz-port", "0", "--log-level", "debug"],
      {
        ...process.env,
        ...fixture.lab.agentEnv(node),
        TRELLIS_ETCD_USERNAME: "root",
        TRELLIS_ETCD_PASSWORD: secret,
      },
    );
    try {
      await timeUntil("some log output", () => Promise.resolve(agent.recentOutput.split("\n").length > 3), 15_000);
      await new Promise((resolve) => setTimeout(resolve, 1500));
    } finally {
      await agent.stop();
    }
    assert.doesNotMatch(agent.recentOutput, new RegExp(secret), agent.recentOutput);
  });

  it("a config file fills what flags and TRELLIS_* variables leave unset, and unknown keys are rejected", async () => {
    const dir = await mkdtemp(join(tmpdir(), "trellis-config-"));
    try {
      const file = join(dir, "agent.json");
      await writeFile(
        file,
        JSON.stringify({
          "etcd-endpoints": "http://10.9.9.9:2379",
          iface: "eth7",
          "subnet-lease-ttl": "1h",
          "ip-masq": false,
        }),
      );
      const result = await runStatus(
        AGENT_BIN,
        ["run", "--config", file, "--print-config", "--subnet-lease-ttl", "2h"],
        { env: { ...process.env, TRELLIS_IFACE: "eth8" } },
      );
      assert.equal(result.code, 0, result.stderr);
      const config = JSON.parse(result.stdout) as Record<string, { value: unknown; source: string }>;
      assert.deepEqual(config["etcd-endpoints"], { value: "http://10.9.9.9:2379", source: "config" });
      assert.deepEqual(config.iface, { value: "eth8", source: "env" });
      assert.deepEqual(config["subnet-lease-ttl"], { value: "2h", source: "flag" });
      assert.deepEqual(config["ip-masq"], { value: false, source: "config" });
      assert.deepEqual(config["subnet-file"], { value: "/run/flannel/subnet.env", source: "default" });

      // The same file serves the other commands: `status` skips run's keys and uses the ones it has.
      await writeFile(
        file,
        JSON.stringify({ "etcd-endpoints": "http://127.0.0.1:1", iface: "eth7", "ip-masq": false }),
      );
      const status = await runStatus(AGENT_BIN, ["status", "--config", file]);
      assert.notEqual(status.code, 2, status.stderr);
      assert.doesNotMatch(status.stderr, /is not an option/);
      assert.match(status.stderr, /127\.0\.0\.1:1/, "the file's etcd endpoint was used");

      await writeFile(file, JSON.stringify({ "etcd-endpoint": "http://10.9.9.9:2379" }));
      const unknown = await runStatus(AGENT_BIN, ["run", "--config", file, "--print-config"]);
      assert.equal(unknown.code, 2);
      assert.match(
        unknown.stderr,
        /key "etcd-endpoint" "http:\/\/10\.9\.9\.9:2379" is invalid: is not an option of `run`; allowed: .*etcd-endpoints/,
      );
      await writeFile(file, JSON.stringify({ "ip-masq": "maybe" }));
      const bad = await runStatus(AGENT_BIN, ["run", "--config", file, "--print-config"]);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--ip-masq "maybe" is invalid: must be true or false/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
