// The agent-resident path (docs/decisions/0011): the wire format, the CNI service with the fake kernel, and the real
// native shim (dist/cni-plugin/trellis-shim) run as the launcher runs it — against the service, against hand-made
// servers that misbehave, and without any server. Only unix sockets in a temp dir; the fake kernel touches nothing.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { lstat, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { readlinkSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "../../lab/src/paths.js";
import { FALLBACK, formatRequest, formatResponse, parseRequest } from "../src/service/protocol.js";
import { CniSocketError, startCniService, type CniService, type CniServiceEvent } from "../src/service/server.js";
import { FakeDeps } from "./support/fake-deps.js";

const SHIM = join(REPO_ROOT, "dist/cni-plugin/trellis-shim");
const SUBNET_ENV =
  "FLANNEL_NETWORK=172.30.0.0/16\nFLANNEL_SUBNET=172.30.5.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";
const OWN_NETNS = readlinkSync("/proc/self/ns/net");

interface ShimRun {
  code: number | null;
  stdout: string;
}

/** The shim as the launcher runs it; the "standalone plugin" is a script that marks its output and echoes stdin. */
function runShim(
  stdin: string,
  env: Record<string, string>,
  fallback: string[] = ["/bin/sh", "-c", "printf 'STANDALONE:'; cat"],
): Promise<ShimRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(SHIM, fallback, { env: { PATH: "/usr/bin:/bin", ...env }, stdio: ["pipe", "pipe", "inherit"] });
    const chunks: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
    child.on("error", reject);
    child.on("close", (code) => {
      resolve({ code, stdout: Buffer.concat(chunks).toString("utf8") });
    });
    child.stdin.end(stdin);
  });
}

/** A server that records each request and answers with `reply` (or closes without a word). */
async function rawServer(
  path: string,
  reply: (request: Buffer) => Buffer | string | undefined,
): Promise<{ server: Server; requests: Buffer[] }> {
  const requests: Buffer[] = [];
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    const chunks: Buffer[] = [];
    socket.on("error", () => undefined); // probes that hang up at once
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("end", () => {
      const request = Buffer.concat(chunks);
      requests.push(request);
      const answer = reply(request);
      if (answer === undefined) socket.destroy();
      else socket.end(answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return { server, requests };
}

const closeServer = (server: Server): Promise<void> =>
  new Promise((resolve) => {
    server.close(() => {
      resolve();
    });
  });

describe("cni service: agent-resident plugin behind a native shim", () => {
  describe("wire format (pure)", () => {
    it("parses what a shim sends: namespace, CNI_* variables (UTF-8), stdin as is", () => {
      const request = {
        netns: "net:[4026531840]",
        env: { CNI_COMMAND: "ADD", CNI_CONTAINERID: "c-ü", CNI_ARGS: "A=1;B=2" },
        stdin: '{"a":"\n\n"}',
      };
      assert.deepEqual(parseRequest(formatRequest(request)), { kind: "request", request });
    });
    it("asks for more while the header is open, and refuses what no shim of ours sends", () => {
      assert.equal(parseRequest(Buffer.from("TRELLIS-CNI/1\nN net:[1]\nE CNI_COMMAND=ADD\n")).kind, "incomplete");
      for (const bad of [
        "HTTP/1.1\n\n",
        "TRELLIS-CNI/1\nE CNI_COMMAND=ADD\n\n",
        "TRELLIS-CNI/1\nN x\nE PATH=/bin\n\n",
        "TRELLIS-CNI/1\nN x\nE CNI_NOEQUALS\n\n",
      ]) {
        assert.equal(parseRequest(Buffer.from(bad)).kind, "invalid", bad);
      }
      assert.equal(parseRequest(Buffer.alloc(70 * 1024, "a")).kind, "invalid");
    });
    it("answers exit code and byte length, then stdout with the plugin's newline", () => {
      assert.equal(formatResponse(0, '{"ü":1}').toString("utf8"), '0 9\n{"ü":1}\n');
      assert.equal(formatResponse(1, "").toString("utf8"), "1 0\n");
    });
  });

  describe("the service with the fake kernel, called through the real shim", () => {
    let dir = "";
    let socketPath = "";
    let deps: FakeDeps;
    let service: CniService;
    const events: CniServiceEvent[] = [];
    const config = (extra: Record<string, unknown> = {}): string =>
      JSON.stringify({
        cniVersion: "1.0.0",
        name: "n",
        type: "trellis",
        subnetFile: "/s",
        dataDir: "/d",
        agentSocket: socketPath,
        ...extra,
      });
    const env = (command: string): Record<string, string> => ({
      CNI_COMMAND: command,
      CNI_CONTAINERID: "c1",
      CNI_NETNS: "/run/netns/p1",
      CNI_IFNAME: "eth0",
      CNI_PATH: "/opt/cni/bin",
    });

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "trellis-cni-service-"));
      socketPath = join(dir, "run", "cni.sock");
      deps = new FakeDeps();
      deps.files.set("/s", SUBNET_ENV);
      deps.world.addNamespace("/run/netns/p1");
      service = await startCniService({ socketPath, deps, netns: OWN_NETNS });
      service.events.on((event) => events.push(event));
    });
    after(async () => {
      await service.close();
      await rm(dir, { recursive: true, force: true });
    });

    it("listens on a socket only root can use, creating its directory", async () => {
      const info = await lstat(socketPath);
      assert.ok(info.isSocket());
      assert.equal(info.mode & 0o777, 0o600);
    });

    it("ADD, CHECK and DEL are done by the service: same answers and exit codes as the plugin, no standalone run", async () => {
      events.length = 0;
      const added = await runShim(config(), env("ADD"));
      assert.equal(added.code, 0, added.stdout);
      assert.doesNotMatch(added.stdout, /STANDALONE/);
      assert.ok(added.stdout.endsWith("}\n"));
      const result = JSON.parse(added.stdout) as { ips: { address: string }[] };
      assert.equal(result.ips[0]?.address, "172.30.5.2/24");
      assert.deepEqual(deps.world.linkNames("/run/netns/p1"), ["eth0"]);
      const checked = await runShim(config({ prevResult: result }), env("CHECK"));
      assert.deepEqual(checked, { code: 0, stdout: "" });
      const deleted = await runShim(config(), env("DEL"));
      assert.deepEqual(deleted, { code: 0, stdout: "" });
      assert.deepEqual(deps.world.linkNames("/run/netns/p1"), []);
      assert.deepEqual(
        events.map((e) => (e.type === "served" ? `${e.command} ${e.exitCode}` : e.type)),
        ["ADD 0", "CHECK 0", "DEL 0"],
      );
    });

    it("passes the plugin's errors through: error JSON on stdout, exit code 1", async () => {
      const bad = await runShim(config({ mtu: 5 }), env("ADD"));
      assert.equal(bad.code, 1);
      assert.deepEqual(JSON.parse(bad.stdout), {
        cniVersion: "1.0.0",
        code: 7,
        msg: "config field mtu 5 is invalid: an integer between 68 and 65535",
        details: "",
      });
    });

    it("sends a caller in another network namespace to the standalone plugin, with stdin intact", async () => {
      const other = await startCniService({ socketPath: join(dir, "other.sock"), deps, netns: "net:[1]" });
      const seen: CniServiceEvent[] = [];
      other.events.on((event) => seen.push(event));
      try {
        const stdin = config({ agentSocket: join(dir, "other.sock") });
        assert.deepEqual(await runShim(stdin, env("ADD")), { code: 0, stdout: `STANDALONE:${stdin}` });
        assert.equal(seen[0]?.type, "fallback");
      } finally {
        await other.close();
      }
    });

    it("replaces a stale socket file, refuses a live one, and removes its socket when closed", async () => {
      const path = join(dir, "stale.sock");
      const { server } = await rawServer(path, () => "0 0\n");
      await assert.rejects(
        startCniService({ socketPath: path, deps, netns: OWN_NETNS }),
        (error: unknown) => error instanceof CniSocketError && error.code === "CONFLICT",
      );
      await closeServer(server);
      // An agent killed with SIGKILL leaves its socket file behind, with nobody answering on it.
      const crashed = spawn(
        process.execPath,
        ["-e", `require("node:net").createServer().listen(${JSON.stringify(path)}, () => console.log("up"))`],
        { stdio: ["ignore", "pipe", "inherit"] },
      );
      await new Promise((resolve) => crashed.stdout.once("data", resolve));
      crashed.kill("SIGKILL");
      await new Promise((resolve) => crashed.once("exit", resolve));
      assert.ok((await lstat(path)).isSocket());
      const again = await startCniService({ socketPath: path, deps, netns: OWN_NETNS });
      await again.close();
      await assert.rejects(lstat(path), /ENOENT/);
      await writeFile(path, "not a socket");
      await assert.rejects(startCniService({ socketPath: path, deps, netns: OWN_NETNS }), /exists and is not a socket/);
      assert.equal(await readFile(path, "utf8"), "not a socket");
    });
  });

  describe("the shim falls back to the standalone plugin whenever the service cannot answer", () => {
    let dir = "";
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "trellis-cni-shim-"));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });
    const stdinFor = (agentSocket: string, extra = ""): string =>
      `{"cniVersion":"1.0.0","name":"n","type":"trellis","agentSocket":"${agentSocket}"${extra}}`;

    it('without a socket, with agentSocket "" and with an agentSocket it cannot read, replaying stdin byte for byte', async () => {
      for (const stdin of [
        stdinFor(join(dir, "absent.sock")),
        stdinFor(""),
        stdinFor("/a\\\\b"),
        stdinFor(join(dir, "x".repeat(120))),
      ]) {
        assert.deepEqual(
          await runShim(stdin, { CNI_COMMAND: "VERSION" }),
          { code: 0, stdout: `STANDALONE:${stdin}` },
          stdin,
        );
      }
      // Larger than a pipe holds: written by a helper process while the standalone plugin reads.
      const large = stdinFor(join(dir, "absent.sock"), `,"pad":"${"p".repeat(300_000)}"`);
      const out = await runShim(large, { CNI_COMMAND: "GC" });
      assert.equal(out.stdout.length, "STANDALONE:".length + large.length);
      assert.equal(out.stdout, `STANDALONE:${large}`);
    });

    it("sends only CNI_* variables and its namespace; falls back on a reply cut short, an unknown reply, a FALLBACK or silence", async () => {
      const path = join(dir, "raw.sock");
      const replies: (string | undefined)[] = [
        '0 50\n{"cut":',
        "HTTP/1.1 200 OK\n",
        FALLBACK,
        undefined,
        "7\nno length",
      ];
      let next = 0;
      const { server, requests } = await rawServer(path, () => replies[next++]);
      try {
        const stdin = stdinFor(path);
        for (const reply of replies) {
          const out = await runShim(stdin, { CNI_COMMAND: "ADD", CNI_IFNAME: "eth0", SECRET_TOKEN: "do-not-send" });
          assert.deepEqual(out, { code: 0, stdout: `STANDALONE:${stdin}` }, String(reply));
        }
        assert.deepEqual(parseRequest(requests[0] ?? Buffer.alloc(0)), {
          kind: "request",
          request: { netns: OWN_NETNS, env: { CNI_COMMAND: "ADD", CNI_IFNAME: "eth0" }, stdin },
        });
      } finally {
        await closeServer(server);
      }
    });

    it("falls back when the service hangs up while the request is still being sent (no SIGPIPE death)", async () => {
      const path = join(dir, "hangup.sock");
      const server = createServer((socket) => {
        socket.destroy();
      });
      await new Promise<void>((resolve) => server.listen(path, resolve));
      try {
        const large = stdinFor(path, `,"pad":"${"q".repeat(2_000_000)}"`);
        const out = await runShim(large, { CNI_COMMAND: "ADD" });
        assert.equal(out.code, 0);
        assert.equal(out.stdout, `STANDALONE:${large}`);
      } finally {
        await closeServer(server);
      }
    });

    it("passes a complete reply on unchanged, exit code included", async () => {
      const path = join(dir, "ok.sock");
      const { server } = await rawServer(path, () => formatResponse(3, '{"code":3}'));
      try {
        assert.deepEqual(await runShim(stdinFor(path), { CNI_COMMAND: "DEL" }), { code: 3, stdout: '{"code":3}\n' });
      } finally {
        await closeServer(server);
      }
    });

    it("answers an error JSON when even the standalone plugin cannot be started", async () => {
      const out = await runShim(stdinFor(""), { CNI_COMMAND: "VERSION" }, [join(dir, "no-such-plugin")]);
      assert.equal(out.code, 1);
      assert.match(out.stdout, /"code":999,"msg":"trellis: cannot run the standalone plugin"/);
    });
  });
});
