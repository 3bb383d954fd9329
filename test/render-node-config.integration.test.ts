// deploy/render-node-config: the three files it renders, their round trip through sh, the unit through
// `systemd-analyze verify`, and every refusal (exit 2, naming the flag and the value, nothing written).
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { runStatus } from "../lab/src/exec.js";
import { AGENT_BIN, REPO_ROOT } from "../lab/src/paths.js";

const RENDER = resolve(REPO_ROOT, "deploy/render-node-config");
const TEMPLATE = resolve(REPO_ROOT, "deploy/systemd/trellis-agent.service");
const CONFLIST = resolve(REPO_ROOT, "deploy/cni/10-trellis.conflist");
const REQUIRED = ["--etcd-endpoints", "http://10.42.0.1:2379", "--iface", "eth0"];

interface ConfList {
  plugins: Record<string, unknown>[];
}

/** The KEY=value lines of an env file, comments left out. */
async function settings(file: string): Promise<string[]> {
  return (await readFile(file, "utf8")).split("\n").filter((line) => line !== "" && !line.startsWith("#"));
}

describe("deploy/render-node-config", function () {
  this.timeout(20_000);
  let dir = "";
  let count = 0;
  const outDir = (): string => join(dir, `out${++count}`);
  const render = (args: readonly string[]): ReturnType<typeof runStatus> => runStatus(RENDER, args);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "trellis-render-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("renders agent.env, the conflist and the unit from every option", async () => {
    const out = outDir();
    const result = await render([
      "--out",
      out,
      ...REQUIRED,
      "--public-ip",
      "10.42.0.11",
      "--subnet-file",
      "/run/lab/n1/subnet.env",
      "--cni-data-dir",
      "/var/lib/lab/n1/cni",
      "--cni-socket",
      "/run/lab/n1/cni.sock",
      "--pod-record-dir",
      "/run/lab/n1/pods",
      "--agent-bin",
      "/opt/trellis/bin/trellis-agent",
      "--resolv-conf",
      "/run/lab/upstream/resolv.conf",
      "--set",
      "TRELLIS_LOG_FORMAT=text",
      "--set",
      "TRELLIS_RESYNC_INTERVAL=1s",
      "--set",
      'TRELLIS_ETCD_PASSWORD=p w"$x',
    ]);
    assert.equal(result.code, 0, result.stderr);

    const envText = await readFile(join(out, "agent.env"), "utf8");
    assert.match(envText, /^# trellis-agent settings/, "a comment header");
    assert.deepEqual(await settings(join(out, "agent.env")), [
      "TRELLIS_ETCD_ENDPOINTS=http://10.42.0.1:2379",
      "TRELLIS_IFACE=eth0",
      "TRELLIS_PUBLIC_IP=10.42.0.11",
      "TRELLIS_SUBNET_FILE=/run/lab/n1/subnet.env",
      "TRELLIS_CNI_SOCKET=/run/lab/n1/cni.sock",
      "TRELLIS_POD_RECORD_DIR=/run/lab/n1/pods",
      "TRELLIS_LOG_FORMAT=text",
      "TRELLIS_RESYNC_INTERVAL=1s",
      'TRELLIS_ETCD_PASSWORD="p w\\"\\$x"',
    ]);
    assert.equal((await stat(join(out, "agent.env"))).mode & 0o777, 0o600, "agent.env may hold a password");

    const expected = JSON.parse(await readFile(CONFLIST, "utf8")) as ConfList;
    expected.plugins[0] = {
      ...expected.plugins[0],
      subnetFile: "/run/lab/n1/subnet.env",
      agentSocket: "/run/lab/n1/cni.sock",
      podRecordDir: "/run/lab/n1/pods",
      dataDir: "/var/lib/lab/n1/cni",
    };
    assert.deepEqual(JSON.parse(await readFile(join(out, "10-trellis.conflist"), "utf8")), expected);

    const unit = await readFile(join(out, "trellis-agent.service"), "utf8");
    const template = await readFile(TEMPLATE, "utf8");
    assert.equal(
      unit,
      template
        .replaceAll("@AGENT_BIN@", "/opt/trellis/bin/trellis-agent")
        .replaceAll("@ENV_FILE@", "/etc/trellis/agent.env"),
    );
    assert.match(unit, /^ExecStart=\/opt\/trellis\/bin\/trellis-agent run$/m);
    assert.match(unit, /^EnvironmentFile=\/etc\/trellis\/agent\.env$/m);
    assert.doesNotMatch(unit, /@[A-Z_]+@/, "no placeholder left");

    // The DNS server: the agent's settings first, then its own file (optional), which names the upstreams.
    assert.deepEqual(await settings(join(out, "dns.env")), ["TRELLIS_RESOLV_CONF=/run/lab/upstream/resolv.conf"]);
    const dnsUnit = await readFile(join(out, "trellis-dns.service"), "utf8");
    assert.match(dnsUnit, /^ExecStart=\/opt\/trellis\/bin\/trellis-agent dns$/m);
    assert.match(dnsUnit, /^EnvironmentFile=\/etc\/trellis\/agent\.env\nEnvironmentFile=-\/etc\/trellis\/dns\.env$/m);
    assert.doesNotMatch(dnsUnit, /@[A-Z_]+@/, "no placeholder left");
  });

  it("uses the defaults without the optional flags, and renders the same bytes again", async () => {
    const FILES = ["agent.env", "10-trellis.conflist", "trellis-agent.service", "dns.env", "trellis-dns.service"];
    const out = outDir();
    assert.equal((await render(["--out", out, ...REQUIRED])).code, 0);
    assert.deepEqual(await settings(join(out, "agent.env")), [
      "TRELLIS_ETCD_ENDPOINTS=http://10.42.0.1:2379",
      "TRELLIS_IFACE=eth0",
      "TRELLIS_SUBNET_FILE=/run/flannel/subnet.env",
      "TRELLIS_CNI_SOCKET=/run/trellis/cni.sock",
      "TRELLIS_POD_RECORD_DIR=/run/trellis/pods",
      "TRELLIS_LOG_FORMAT=json",
    ]);
    const conflist = JSON.parse(await readFile(join(out, "10-trellis.conflist"), "utf8")) as ConfList;
    assert.deepEqual(
      conflist,
      JSON.parse(await readFile(CONFLIST, "utf8")),
      "the default subnetFile and agentSocket, no dataDir",
    );
    assert.match(
      await readFile(join(out, "trellis-agent.service"), "utf8"),
      /^ExecStart=\/usr\/local\/bin\/trellis-agent run$/m,
    );

    const before = await Promise.all(FILES.map((f) => readFile(join(out, f), "utf8")));
    assert.equal((await render(["--out", out, ...REQUIRED])).code, 0);
    const after = await Promise.all(FILES.map((f) => readFile(join(out, f), "utf8")));
    assert.deepEqual(after, before);
  });

  it("writes agent.env values that sh reads back unchanged (the quoting systemd's EnvironmentFile shares)", async () => {
    const out = outDir();
    const tricky = "a b&c\\d\"e`f$g'h #i";
    assert.equal(
      (await render(["--out", out, ...REQUIRED, "--set", `TRELLIS_X=${tricky}`, "--set", "TRELLIS_EMPTY="])).code,
      0,
    );
    const read = await runStatus(
      "sh",
      [
        "-c",
        'set -a; . "$1"; printf "%s\\n" "$TRELLIS_X" "$TRELLIS_EMPTY" "$TRELLIS_ETCD_ENDPOINTS"',
        "sh",
        join(out, "agent.env"),
      ],
      {
        env: { PATH: "/usr/bin:/bin" },
      },
    );
    assert.equal(read.code, 0, read.stderr);
    assert.equal(read.stdout, `${tricky}\n\nhttp://10.42.0.1:2379\n`);
  });

  it("renders a unit that `systemd-analyze verify` accepts without a warning", async function () {
    const probe = await runStatus("sh", ["-c", "command -v systemd-analyze"]);
    if (probe.code !== 0) {
      console.log("      skipped: systemd-analyze is not installed here (Debian: package systemd)");
      this.skip();
    }
    const out = outDir();
    // verify checks that ExecStart's binary exists and is executable: the checkout's agent.
    assert.equal((await render(["--out", out, ...REQUIRED, "--agent-bin", AGENT_BIN])).code, 0);
    for (const unit of ["trellis-agent.service", "trellis-dns.service"]) {
      const result = await runStatus("systemd-analyze", ["verify", join(out, unit)]);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(
        result.stderr.split("\n").filter((line) => line.includes(unit)),
        [],
        result.stderr,
      );
    }
  });

  const refusals: [string, string[], RegExp][] = [
    ["an unknown --set key", ["--set", "FOO=1"], /--set "FOO": the key must match/],
    ["a --set key in lower case", ["--set", "TRELLIS_log=1"], /--set "TRELLIS_log"/],
    [
      "a newline in a --set value",
      ["--set", "TRELLIS_X=a\nb"],
      /--set TRELLIS_X: the value \$'a\\nb' contains a newline/,
    ],
    ["a --set without =", ["--set", "TRELLIS_X"], /--set "TRELLIS_X": expected KEY=VALUE/],
    ["a --set of a setting with its own flag", ["--set", "TRELLIS_IFACE=eth1"], /--set TRELLIS_IFACE: use --iface/],
    ["the same --set key twice", ["--set", "TRELLIS_X=1", "--set", "TRELLIS_X=2"], /--set TRELLIS_X: given twice/],
    ["a flag given twice", ["--iface", "eth1"], /--iface given twice/],
    ["a public IP that is not IPv4", ["--public-ip", "10.0.0.256"], /--public-ip "10\.0\.0\.256": not an IPv4 address/],
    [
      "a relative subnet file",
      ["--subnet-file", "subnet.env"],
      /--subnet-file "subnet\.env": must be an absolute path/,
    ],
    [
      "a CNI socket path the shim cannot use",
      ["--cni-socket", `/run/${"s".repeat(110)}`],
      /--cni-socket "\/run\/s+": must be at most 107 bytes/,
    ],
    ["an agent binary ExecStart= cannot take", ["--agent-bin", "/opt/my agent"], /--agent-bin "\/opt\/my agent"/],
    ["an unknown argument", ["--bogus"], /unknown argument "--bogus"/],
  ];
  for (const [what, extra, message] of refusals) {
    it(`exits 2 on ${what}, naming it, and writes nothing`, async () => {
      const out = outDir();
      const result = await render(["--out", out, ...REQUIRED, ...extra]);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, message);
      await assert.rejects(stat(out), { code: "ENOENT" });
    });
  }

  it("exits 2 without --out, --etcd-endpoints or --iface, or with a bad endpoint or interface", async () => {
    const cases: [string[], RegExp][] = [
      [REQUIRED, /--out DIR is required/],
      [["--out", outDir(), "--iface", "eth0"], /--etcd-endpoints URLS is required/],
      [["--out", outDir(), "--etcd-endpoints", "http://10.42.0.1:2379"], /--iface IFACE is required/],
      [
        ["--out", outDir(), "--etcd-endpoints", "10.42.0.1:2379", "--iface", "eth0"],
        /--etcd-endpoints "10\.42\.0\.1:2379": not an etcd URL/,
      ],
      [
        ["--out", outDir(), "--etcd-endpoints", "http://a:2379,", "--iface", "eth0"],
        /--etcd-endpoints "http:\/\/a:2379,": empty endpoint/,
      ],
      [
        ["--out", outDir(), "--etcd-endpoints", "http://a:2379", "--iface", "eth0/1"],
        /--iface "eth0\/1": not an interface name/,
      ],
      [["--out"], /--out needs a value/],
    ];
    for (const [args, message] of cases) {
      const result = await render(args);
      assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
      assert.match(result.stderr, message);
    }
  });

  it("prints its usage with --help", async () => {
    const result = await render(["--help"]);
    assert.equal(result.code, 0);
    for (const flag of [
      "--out",
      "--etcd-endpoints",
      "--iface",
      "--public-ip",
      "--subnet-file",
      "--cni-data-dir",
      "--cni-socket",
      "--agent-bin",
      "--set",
    ]) {
      assert.ok(result.stdout.includes(flag), `--help mentions ${flag}`);
    }
  });
});
