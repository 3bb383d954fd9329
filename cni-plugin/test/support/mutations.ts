// Random but reproducible (seeded) plugin inputs: valid invocations of every command and version, then mutated —
// env vars dropped or replaced by hostile strings, config fields removed or given values of the wrong type, JSON
// text truncated or corrupted. `safe` restricts paths so that the real executable can run them on this machine.
import assert from "node:assert/strict";
import type { PluginOutcome } from "../../src/plugin.js";
import { SUPPORTED_VERSIONS } from "../../src/versions.js";

/** The seed of every fuzz run (TRELLIS_FUZZ_SEED to replay another). */
export const FUZZ_SEED = Number(process.env.TRELLIS_FUZZ_SEED ?? 20260);

export type Rng = () => number;

export function seeded(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)] as T;

const NASTY = [
  "",
  "/",
  "..",
  ".",
  "../../etc",
  "a b",
  "eth0\n",
  "x".repeat(300),
  "a:b",
  "é",
  "$(id)",
  "-1",
  "\u0000",
  "veth0",
  "ok-id_1.2",
  "lo",
];
const ANY_VALUES: readonly unknown[] = [
  null,
  0,
  -1,
  1.5,
  70000,
  true,
  false,
  "",
  "x",
  [],
  {},
  [1, "a"],
  { a: 1 },
  "/tmp/../etc",
  "cni0",
  1450,
];

export interface Input {
  env: Record<string, string>;
  stdin: string;
  /** The attachment the input names when it is well-formed enough to have one. */
  containerId: string | undefined;
  ifname: string | undefined;
}

export interface Paths {
  subnetFile: string;
  dataDir: string;
  /** A pod namespace path that exists. */
  netns: string;
  /** Paths that exist but are not namespaces, or do not exist. */
  badNetns: readonly string[];
}

export function randomInput(rng: Rng, paths: Paths, safe: boolean): Input {
  const command = pick(rng, ["ADD", "ADD", "ADD", "DEL", "DEL", "CHECK", "GC", "STATUS", "VERSION"]);
  const version = pick(rng, SUPPORTED_VERSIONS);
  const id = `fz${Math.floor(rng() * 1e9).toString(36)}`;
  const env: Record<string, string> = {
    CNI_COMMAND: command,
    CNI_CONTAINERID: id,
    CNI_NETNS: paths.netns,
    CNI_IFNAME: "eth0",
    CNI_PATH: "/usr/lib/cni",
  };
  const config: Record<string, unknown> = {
    cniVersion: version,
    name: "fuzz",
    type: "trellis",
    subnetFile: paths.subnetFile,
    dataDir: paths.dataDir,
  };
  if (command === "GC") config["cni.dev/valid-attachments"] = [];
  if (command === "CHECK")
    config.prevResult = {
      cniVersion: version,
      interfaces: [{ name: "eth0" }],
      ips: [{ address: "172.30.5.2/24", interface: 0 }],
    };

  const envMutations = Math.floor(rng() * 3);
  for (let i = 0; i < envMutations; i += 1) {
    const key = pick(rng, ["CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS"]);
    const action = rng();
    if (action < 0.3) Reflect.deleteProperty(env, key);
    else if (key === "CNI_NETNS") env[key] = pick(rng, [...paths.badNetns, "relative", ""]);
    else if (key === "CNI_ARGS")
      env[key] = pick(rng, ["IgnoreUnknown=1;X=y", "X=y", "novalue", "K8S_POD_NAME=p", ";;", "="]);
    else env[key] = pick(rng, NASTY).replaceAll("\u0000", safe ? "" : "\u0000");
  }
  const configMutations = Math.floor(rng() * 3);
  for (let i = 0; i < configMutations; i += 1) {
    const key = pick(rng, [
      "cniVersion",
      "name",
      "type",
      "subnetFile",
      "dataDir",
      "bridge",
      "mtu",
      "hairpinMode",
      "isDefaultGateway",
      "ipMasq",
      "dns",
      "prevResult",
      "cni.dev/valid-attachments",
    ]);
    const action = rng();
    if (action < 0.3) Reflect.deleteProperty(config, key);
    else if (safe && (key === "subnetFile" || key === "dataDir"))
      config[key] = pick(rng, ["relative", "/a/../b", 5, `${paths.dataDir}-other`]);
    else if (key === "cniVersion") config[key] = pick(rng, ["0.1.0", "2.0.0", "", 1, ...SUPPORTED_VERSIONS]);
    else if (key === "bridge") config[key] = pick(rng, ["a/b", "x".repeat(16), "", 7, "lo", "fzbr0"]);
    else config[key] = pick(rng, ANY_VALUES);
  }
  let stdin = JSON.stringify(config);
  const textMutation = rng();
  if (textMutation < 0.05) stdin = stdin.slice(0, Math.floor(rng() * stdin.length));
  else if (textMutation < 0.08) stdin = `${stdin.slice(0, 10)}\u0000${stdin.slice(11)}`;
  else if (textMutation < 0.1) stdin = pick(rng, ["", "null", "[]", "{}", '"x"', "{".repeat(5000)]);
  else if (textMutation < 0.11) stdin = JSON.stringify({ ...config, pad: "z".repeat(4 * 1024 * 1024 + 10) });
  return { env, stdin, containerId: env.CNI_CONTAINERID, ifname: env.CNI_IFNAME };
}

/** What every answer to a mutated input must look like, in-process or from the executable. */
export function assertAnswer(input: Input, out: PluginOutcome, stderr: string, label: string): void {
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
