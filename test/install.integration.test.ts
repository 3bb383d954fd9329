// scripts/install and scripts/uninstall into temp roots (never /): every file and mode, the installed agent (with
// its V8 flags) and CNI plugin run from the temp root, uninstall back to an empty root; and the npm package.
import assert from "node:assert/strict";
import { appendFile, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { run, runStatus } from "../lab/src/exec.js";
import { REPO_ROOT } from "../lab/src/paths.js";

const INSTALL = resolve(REPO_ROOT, "scripts/install");
const UNINSTALL = resolve(REPO_ROOT, "scripts/uninstall");
const RENDER = resolve(REPO_ROOT, "deploy/render-node-config");
const SETTINGS = ["--etcd-endpoints", "http://192.168.56.11:2379", "--iface", "eth1", "--public-ip", "192.168.56.12"];
const MANIFEST = "/var/lib/trellis/install.manifest";
/** Every file install writes, and its mode. */
const INSTALLED: Record<string, number> = {
  "/etc/cni/net.d/10-trellis.conflist": 0o644,
  "/etc/systemd/system/trellis-agent.service": 0o644,
  "/etc/systemd/system/trellis-dns.service": 0o644,
  "/etc/trellis/agent.env": 0o600,
  "/etc/trellis/dns.env": 0o644,
  "/opt/cni/bin/trellis": 0o755,
  "/usr/local/bin/trellis-agent": 0o755,
  [MANIFEST]: 0o644,
};
const CLEAN_ENV = { PATH: "/usr/bin:/bin" };

/** Every entry under dir ("/etc/", "/etc/trellis/agent.env", …), directories with a trailing slash. */
async function tree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.map((e) => `${join(e.parentPath, e.name).slice(dir.length)}${e.isDirectory() ? "/" : ""}`).sort();
}
const filesOf = (entries: string[]): string[] => entries.filter((e) => !e.endsWith("/"));

describe("scripts/install and scripts/uninstall (temp roots)", function () {
  this.timeout(30_000);
  let base = "";
  let count = 0;
  /** A fresh, empty directory under the suite's temp dir. */
  async function freshDir(name: string): Promise<string> {
    const dir = join(base, `${name}${++count}`);
    await mkdir(dir);
    return dir;
  }

  before(async () => {
    base = await mkdtemp(join(tmpdir(), "trellis-install-"));
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  describe("with node settings", () => {
    let root = "";
    before(async () => {
      root = await freshDir("root");
      await run(INSTALL, ["--root", root, ...SETTINGS]);
    });

    it("installs every file with its mode, as render-node-config renders them", async () => {
      assert.deepEqual(filesOf(await tree(root)), Object.keys(INSTALLED).sort());
      for (const [path, mode] of Object.entries(INSTALLED)) {
        assert.equal((await stat(join(root, path))).mode & 0o777, mode, path);
      }
      const rendered = await freshDir("rendered");
      await run(RENDER, ["--out", rendered, ...SETTINGS]);
      for (const [name, path] of [
        ["agent.env", "/etc/trellis/agent.env"],
        ["10-trellis.conflist", "/etc/cni/net.d/10-trellis.conflist"],
        ["trellis-agent.service", "/etc/systemd/system/trellis-agent.service"],
        ["dns.env", "/etc/trellis/dns.env"],
        ["trellis-dns.service", "/etc/systemd/system/trellis-dns.service"],
      ] as const) {
        assert.equal(await readFile(join(root, path), "utf8"), await readFile(join(rendered, name), "utf8"), path);
      }
      const unit = await readFile(join(root, "etc/systemd/system/trellis-agent.service"), "utf8");
      assert.match(unit, /^ExecStart=\/usr\/local\/bin\/trellis-agent run$/m);
      assert.match(unit, /^EnvironmentFile=\/etc\/trellis\/agent\.env$/m);
      const launcher = await readFile(join(root, "usr/local/bin/trellis-agent"), "utf8");
      assert.ok(launcher.includes(`exec '${REPO_ROOT}/agent/bin/agent' "$@"`), launcher);
    });

    it("runs the installed trellis-agent with agent/bin/agent's V8 flags", async () => {
      const shebang = (await readFile(resolve(REPO_ROOT, "agent/bin/agent"), "utf8")).split("\n")[0] ?? "";
      const v8Flags = shebang.split(/\s+/).filter((word) => word.startsWith("--"));
      assert.ok(v8Flags.includes("--lite-mode"), shebang);
      // A preload records the node process's execArgv: the flags arrived only if the shebang was honoured.
      const preload = join(base, "execargv.cjs");
      const record = join(base, "execargv.json");
      await writeFile(
        preload,
        `require("node:fs").writeFileSync(${JSON.stringify(record)}, JSON.stringify(process.execArgv));\n`,
      );
      const out = await runStatus(join(root, "usr/local/bin/trellis-agent"), ["version"], {
        env: { ...CLEAN_ENV, NODE_OPTIONS: `--require ${preload}` },
      });
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stdout, /^trellis-agent \d+\.\d+\.\d+/);
      assert.deepEqual(JSON.parse(await readFile(record, "utf8")), v8Flags);
      // The DNS server runs with V8's optimising compiler: no lite mode for `dns`.
      const dns = await runStatus(join(root, "usr/local/bin/trellis-agent"), ["dns", "--help"], {
        env: { ...CLEAN_ENV, NODE_OPTIONS: `--require ${preload}` },
      });
      assert.equal(dns.code, 0, dns.stderr);
      assert.match(dns.stdout, /cluster DNS server/);
      assert.deepEqual(JSON.parse(await readFile(record, "utf8")), []);
    });

    it("runs the installed CNI plugin as a runtime would (own environment, VERSION)", async () => {
      const out = await runStatus(join(root, "opt/cni/bin/trellis"), [], {
        env: { ...CLEAN_ENV, CNI_COMMAND: "VERSION" },
        input: "",
      });
      assert.equal(out.code, 0, out.stderr);
      const version = JSON.parse(out.stdout) as { cniVersion: string; supportedVersions: string[] };
      assert.ok(version.supportedVersions.includes(version.cniVersion), out.stdout);
    });

    it("installs again without touching an existing agent.env, and says the settings were not applied", async () => {
      await appendFile(join(root, "etc/trellis/agent.env"), "TRELLIS_LOG_LEVEL=debug\n");
      const envBefore = await readFile(join(root, "etc/trellis/agent.env"), "utf8");
      const launcherBefore = await readFile(join(root, "usr/local/bin/trellis-agent"), "utf8");
      const result = await run(INSTALL, [
        "--root",
        root,
        "--etcd-endpoints",
        "http://10.0.0.1:2379",
        "--iface",
        "eth2",
      ]);
      assert.match(result.stderr, /node settings given were NOT applied/);
      assert.equal(await readFile(join(root, "etc/trellis/agent.env"), "utf8"), envBefore);
      assert.equal(await readFile(join(root, "usr/local/bin/trellis-agent"), "utf8"), launcherBefore);
      assert.deepEqual(filesOf(await tree(root)), Object.keys(INSTALLED).sort());
    });

    it("uninstalls everything but agent.env; --purge removes it too; again is a no-op", async () => {
      await run(UNINSTALL, ["--root", root]);
      assert.deepEqual(await tree(root), [
        "/etc/",
        "/etc/trellis/",
        "/etc/trellis/agent.env",
        "/var/",
        "/var/lib/",
        "/var/lib/trellis/",
        MANIFEST,
      ]);
      await run(UNINSTALL, ["--root", root, "--purge"]);
      assert.deepEqual(await tree(root), []);
      await run(UNINSTALL, ["--root", root]);
      assert.deepEqual(await tree(root), []);
    });
  });

  it("installs agent.env as a commented template without node settings; uninstall --purge leaves the root empty", async () => {
    const root = await freshDir("template");
    await run(INSTALL, ["--root", root]);
    assert.deepEqual(filesOf(await tree(root)), Object.keys(INSTALLED).sort());
    const env = await readFile(join(root, "etc/trellis/agent.env"), "utf8");
    assert.match(env, /^#TRELLIS_ETCD_ENDPOINTS=/m);
    assert.match(env, /^#TRELLIS_IFACE=/m);
    assert.deepEqual(
      env.split("\n").filter((l) => l !== "" && !l.startsWith("#")),
      ["TRELLIS_LOG_FORMAT=json"],
    );
    await run(UNINSTALL, ["--root", root, "--purge"]);
    assert.deepEqual(await tree(root), []);
  });

  it("keeps a file changed after install, and only the directories it needs", async () => {
    const root = await freshDir("changed");
    await run(INSTALL, ["--root", root, ...SETTINGS]);
    await appendFile(join(root, "etc/systemd/system/trellis-agent.service"), "# local change\n");
    const result = await run(UNINSTALL, ["--root", root, "--purge"]);
    assert.match(result.stderr, /kept .*trellis-agent\.service: it was changed after install/);
    assert.deepEqual(filesOf(await tree(root)), ["/etc/systemd/system/trellis-agent.service", MANIFEST]);
    await rm(join(root, "etc/systemd/system/trellis-agent.service"));
    await run(UNINSTALL, ["--root", root]);
    assert.deepEqual(await tree(root), []);
  });

  it("refuses bad node settings (exit 2, from render-node-config) before writing anything", async () => {
    const root = await freshDir("bad");
    const result = await runStatus(INSTALL, [
      "--root",
      root,
      "--etcd-endpoints",
      "http://10.0.0.1:2379",
      "--iface",
      "eth1",
      "--set",
      "FOO=1",
    ]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /--set "FOO"/);
    assert.deepEqual(await tree(root), []);
  });

  it("refuses unknown arguments and --enable into a temp root (exit 2)", async () => {
    const root = await freshDir("usage");
    for (const args of [["--bogus"], ["--root", root, "--enable", ...SETTINGS]]) {
      const result = await runStatus(INSTALL, args);
      assert.equal(result.code, 2, result.stderr);
    }
    assert.equal((await runStatus(UNINSTALL, ["--bogus"])).code, 2);
    assert.deepEqual(await tree(root), []);
  });
});

describe("npm package", function () {
  this.timeout(30_000);

  interface PackFile {
    path: string;
    mode: number;
  }

  it("lists both executables, everything they load, deploy/ and the install scripts", async () => {
    const { stdout } = await run("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"]);
    const [pack] = JSON.parse(stdout) as [{ files: PackFile[] }];
    const files = new Map(pack.files.map((f) => [f.path, f.mode]));
    for (const executable of [
      "agent/bin/agent",
      "cni-plugin/bin/trellis",
      "dist/cni-plugin/trellis-shim",
      "scripts/install",
      "scripts/uninstall",
      "deploy/render-node-config",
    ]) {
      assert.equal((files.get(executable) ?? 0) & 0o111, 0o111, `${executable} is packed and executable`);
    }
    for (const path of [
      "dist/cni-plugin/src/launcher.cjs",
      "dist/cni-plugin/trellis.cjs",
      "deploy/cni/10-trellis.conflist",
      "deploy/systemd/trellis-agent.service",
    ]) {
      assert.ok(files.has(path), `${path} is packed`);
    }
    // The agent's module graph from its entry point: every relative import must be in the package.
    const pending = ["dist/agent/src/cli/main.js"];
    const seen = new Set<string>();
    for (let path = pending.pop(); path !== undefined; path = pending.pop()) {
      if (seen.has(path)) continue;
      seen.add(path);
      assert.ok(files.has(path), `${path} (imported by the agent) is packed`);
      const source = await readFile(resolve(REPO_ROOT, path), "utf8");
      for (const match of source.matchAll(/(?:from|import)\s*\(?\s*"(\.\.?\/[^"]+)"/g)) {
        pending.push(join(path, "..", match[1] ?? ""));
      }
    }
    assert.ok(seen.size > 20, `walked ${seen.size} agent modules`);
    const pkg = JSON.parse(await readFile(resolve(REPO_ROOT, "package.json"), "utf8")) as {
      bin: Record<string, string>;
    };
    assert.equal(pkg.bin["trellis-agent"], "agent/bin/agent");
  });
});
