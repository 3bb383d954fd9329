// Thousands of mutated inputs through runPlugin (the function main.ts runs) with fakes, and a sample through the real
// executable. For every input: an answer (never a throw, never a stack trace); on failure the spec's error JSON on
// stdout with exit 1 and no state left behind; nothing accepted names a path outside the data dir.
import assert from "node:assert/strict";
import { isValidContainerId, isValidIfname } from "../src/env.js";
import { runPlugin, type PluginOutcome } from "../src/plugin.js";
import { SUPPORTED_VERSIONS } from "../src/versions.js";
import { FakeDeps } from "./support/fake-deps.js";
import { randomInput, seeded, type Input } from "./support/mutations.js";
import { usePluginFixture } from "./support/plugin-fixture.js";

const SUBNET_ENV = "FLANNEL_NETWORK=172.30.0.0/16\nFLANNEL_SUBNET=172.30.5.1/24\nFLANNEL_MTU=1450\n";
const IN_PROCESS = 3000;
const REAL = 100;
const SEED = Number(process.env.TRELLIS_FUZZ_SEED ?? 20260);

function assertAnswer(input: Input, out: PluginOutcome, stderr: string, label: string): void {
  const where = `${label}: ${JSON.stringify(input.env)} ${input.stdin.slice(0, 300)}`;
  assert.ok(out.exitCode === 0 || out.exitCode === 1, `exit code ${out.exitCode} ${where}`);
  assert.doesNotMatch(out.stdout + stderr, /\n\s+at |Error: .*\n/, `no stack trace ${where}`);
  if (out.exitCode === 0) {
    if (input.env.CNI_COMMAND === "ADD" || input.env.CNI_COMMAND === "VERSION")
      assert.equal(typeof (JSON.parse(out.stdout) as { cniVersion?: unknown }).cniVersion, "string", where);
    else assert.equal(out.stdout.trim(), "", where);
    return;
  }
  const error = JSON.parse(out.stdout) as Record<string, unknown>;
  assert.deepEqual(Object.keys(error).sort(), ["cniVersion", "code", "details", "msg"], where);
  assert.ok((SUPPORTED_VERSIONS as readonly unknown[]).includes(error.cniVersion), where);
  assert.ok(Number.isInteger(error.code) && (error.code as number) > 0, where);
  assert.ok(typeof error.msg === "string" && error.msg.length > 0, where);
  assert.notEqual(error.code, 999, `an internal error is a bug: ${error.msg} ${where}`);
}

describe("cni plugin: randomised bad input", function () {
  this.timeout(120_000);

  it(`${IN_PROCESS} mutated inputs in-process (fake kernel and store): always an answer, errors clean, no partial state (seed ${SEED})`, async () => {
    const rng = seeded(SEED);
    const paths = {
      subnetFile: "/fz/subnet.env",
      dataDir: "/fz/ipam",
      netns: "/run/netns/fzpod",
      badNetns: ["/run/netns/absent", "/fz/subnet.env"],
    };
    const failures = new Map<number, number>();
    for (let i = 0; i < IN_PROCESS; i += 1) {
      const input = randomInput(rng, paths, false);
      const deps = new FakeDeps();
      if (rng() < 0.9) deps.files.set(paths.subnetFile, rng() < 0.95 ? SUBNET_ENV : "FLANNEL_NETWORK=garbage\n");
      deps.world.addNamespace(paths.netns);
      const out = await runPlugin({ env: input.env, stdin: input.stdin, deps });
      assertAnswer(input, out, "", `#${i}`);
      for (const r of deps.allReservations()) {
        assert.ok(
          isValidContainerId(r.containerId) && isValidIfname(r.ifname),
          `only safe names reach the store: ${JSON.stringify(r)}`,
        );
      }
      if (out.exitCode !== 0) {
        failures.set(
          (JSON.parse(out.stdout) as { code: number }).code,
          (failures.get((JSON.parse(out.stdout) as { code: number }).code) ?? 0) + 1,
        );
        assert.deepEqual(deps.allReservations(), [], `#${i}: a failure leaves no reservation`);
        assert.deepEqual(
          deps.world.linkNames("host").filter((n) => n.startsWith("veth")),
          [],
          `#${i}: a failure leaves no veth`,
        );
      }
    }
    // The mutations must reach many different errors, or the test proves little.
    assert.ok(failures.size >= 8, `error codes seen: ${JSON.stringify([...failures])}`);
  });

  describe(`${REAL} mutated inputs through the real executable`, () => {
    const f = usePluginFixture();
    it("answers every one cleanly and leaves no state after failures", async () => {
      const rng = seeded(SEED + 1);
      const pod = await f.pod();
      const paths = {
        subnetFile: f.subnetFile,
        dataDir: f.dataDir,
        netns: `/run/netns/${pod}`,
        badNetns: ["/run/netns/trellis-absent-ns", f.subnetFile],
      };
      const codes = new Set<number>();
      for (let i = 0; i < REAL; i += 1) {
        const input = randomInput(rng, paths, true);
        const raw = await f.invokeRaw(input.env, input.stdin);
        assertAnswer(input, { stdout: raw.stdout, exitCode: raw.code }, raw.stderr, `real #${i}`);
        assert.equal(raw.stderr, "", `real #${i}: nothing on stderr`);
        if (raw.code !== 0) codes.add((JSON.parse(raw.stdout) as { code: number }).code);
        if (raw.code !== 0 && input.env.CNI_COMMAND === "ADD") {
          assert.deepEqual(await f.reservations(), [], `real #${i}: ${raw.stdout}`);
          assert.deepEqual(await f.hostVeths(), [], `real #${i}`);
        }
        if (
          raw.code === 0 &&
          input.env.CNI_COMMAND === "ADD" &&
          input.containerId !== undefined &&
          input.ifname !== undefined
        ) {
          const config = JSON.parse(input.stdin) as Record<string, unknown>;
          const del = await f.invoke("DEL", {
            containerId: input.containerId,
            ifname: input.ifname,
            config: { ...config, cniVersion: "1.0.0" },
          });
          assert.equal(del.code, 0, del.stdout);
        }
      }
      assert.ok(codes.size >= 5, `error codes seen: ${[...codes].join(",")}`);
      assert.deepEqual(await f.reservations(), []);
      assert.deepEqual(await f.hostVeths(), []);
    });
  });
});
