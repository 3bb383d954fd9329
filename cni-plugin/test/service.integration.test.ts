// The agent-resident path (docs/decisions/0011): the wire format, the CNI service with the fake kernel, and the real
// native shim (dist/cni-plugin/trellis-shim) run as the launcher runs it — against the service, against hand-made
// servers that misbehave, and without any server. Only unix sockets in a temp dir; the fake kernel touches nothing
// (the pod namespaces are real, so that the shim can open them as a runtime's CNI_NETNS, and empty).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmod, lstat, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { readlinkSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NamespaceSet } from "../../lab/src/netns.js";
import { REPO_ROOT } from "../../lab/src/paths.js";
import { MAX_CNI_STDIN_BYTES } from "#lib/names.js";
import {
  FALLBACK,
  formatRequest,
  formatResponse,
  GO,
  parseRequest,
  READY,
  SHIM_READY_TIMEOUT_MS,
} from "../src/service/protocol.js";
import { CniSocketError, startCniService, type CniService, type CniServiceEvent } from "../src/service/server.js";
import { FakeDeps } from "./support/fake-deps.js";

const SHIM = join(REPO_ROOT, "dist/cni-plugin/trellis-shim");
const SUBNET_ENV =
  "FLANNEL_NETWORK=172.30.0.0/16\nFLANNEL_SUBNET=172.30.5.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";
const OWN_NETNS = readlinkSync("/proc/self/ns/net");

interface ShimRun {
  code: number | null;
  stdout: string;
  ms: number;
}

/** The shim as the launcher runs it; the "standalone plugin" is a script that marks its output and echoes stdin. */
function runShim(
  stdin: string,
  env: Record<string, string>,
  fallback: string[] = ["/bin/sh", "-c", "printf 'STANDALONE:'; cat"],
): Promise<ShimRun> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(SHIM, fallback, { env: { PATH: "/usr/bin:/bin", ...env }, stdio: ["pipe", "pipe", "inherit"] });
    const chunks: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
    child.on("error", reject);
    child.on("close", (code) => {
      resolve({ code, stdout: Buffer.concat(chunks).toString("utf8"), ms: performance.now() - started });
    });
    child.stdin.on("error", () => undefined); // a shim that refuses an oversized stdin stops reading it
    child.stdin.end(stdin);
  });
}

const plain = (run: ShimRun): { code: number | null; stdout: string } => ({ code: run.code, stdout: run.stdout });

/**
 * A server speaking the first half of the protocol: it reads a whole request, then answers `ready` (READY, or
 * anything else, or nothing), and after a GO answers `reply`. It records requests and whether GO came.
 */
async function rawServer(
  path: string,
  /** `ready` "silent": no answer at all (a stopped agent). */
  behave: (n: number) => { ready?: string; reply?: Buffer | string },
): Promise<{ server: Server; requests: Buffer[]; gos: number[] }> {
  const requests: Buffer[] = [];
  const gos: number[] = [];
  let n = 0;
  const server = createServer({ allowHalfOpen: true }, (socket: Socket) => {
    const index = n++;
    const { ready = READY, reply } = behave(index);
    const chunks: Buffer[] = [];
    let answered = false;
    socket.on("error", () => undefined);
    socket.on("end", () => socket.destroy()); // a shim that gave up or fell back
    socket.on("data", (chunk: Buffer) => {
      if (!answered) {
        chunks.push(chunk);
        const parsed = parseRequest(Buffer.concat(chunks));
        if (parsed.kind === "incomplete") return;
        answered = true;
        requests.push(Buffer.concat(chunks));
        if (ready !== "silent") socket.write(ready);
        return;
      }
      if (chunk.toString("latin1") === GO) {
        gos.push(index);
        if (reply === undefined) socket.destroy();
        else socket.end(reply);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return { server, requests, gos };
}

const closeServer = (server: Server): Promise<void> =>
  new Promise((resolve) => {
    server.close(() => {
      resolve();
    });
  });

describe("cni service: agent-resident plugin behind a native shim", function () {
  this.timeout(60_000);
  const namespaces = new NamespaceSet();
  after(async () => {
    await namespaces.dispose();
  });

  describe("wire format (pure)", () => {
    it("parses what a shim sends: namespace, the descriptor or the errno for CNI_NETNS, CNI_* variables (UTF-8), stdin by length", () => {
      for (const target of [{ kind: "fd" } as const, { kind: "errno", errno: 2 } as const, { kind: "none" } as const]) {
        const request = {
          netns: "net:[4026531840]",
          env: { CNI_COMMAND: "ADD", CNI_CONTAINERID: "c-ü", CNI_ARGS: "A=1;B=2" },
          target,
          stdin: '{"a":"\n\nü"}',
        };
        assert.deepEqual(parseRequest(formatRequest(request)), { kind: "request", request });
      }
    });
    it("asks for more until the header and every stdin byte arrived, and refuses what no shim of ours sends", () => {
      const whole = formatRequest({
        netns: "net:[1]",
        env: { CNI_COMMAND: "ADD" },
        target: { kind: "none" },
        stdin: "{}",
      });
      assert.equal(parseRequest(whole.subarray(0, whole.length - 1)).kind, "incomplete");
      assert.equal(parseRequest(Buffer.from("TRELLIS-CNI/2\nN net:[1]\nE CNI_COMMAND=ADD\n")).kind, "incomplete");
      assert.equal(parseRequest(Buffer.concat([whole, Buffer.from("x")])).kind, "invalid");
      const bad = [
        "TRELLIS-CNI/1\nN x\nL 0\n\n",
        "TRELLIS-CNI/2\nE CNI_COMMAND=ADD\nL 0\n\n",
        "TRELLIS-CNI/2\nN x\nE PATH=/bin\nL 0\n\n",
        "TRELLIS-CNI/2\nN x\nE CNI_NOEQUALS\nL 0\n\n",
        "TRELLIS-CNI/2\nN x\n\n",
      ];
      for (const text of bad) assert.equal(parseRequest(Buffer.from(text)).kind, "invalid", text);
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
    let pod = "";
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
    const env = (command: string, netns = `/run/netns/${pod}`): Record<string, string> => ({
      CNI_COMMAND: command,
      CNI_CONTAINERID: "c1",
      CNI_NETNS: netns,
      CNI_IFNAME: "eth0",
      CNI_PATH: "/opt/cni/bin",
    });

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "trellis-cni-service-"));
      socketPath = join(dir, "run", "cni.sock");
      pod = await namespaces.add();
      deps = new FakeDeps();
      deps.files.set("/s", SUBNET_ENV);
      deps.world.addNamespace(`/run/netns/${pod}`);
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
      assert.equal((await lstat(join(dir, "run"))).mode & 0o777, 0o755);
    });

    it("ADD, CHECK and DEL are done by the service: same answers and exit codes as the plugin, no standalone run", async () => {
      events.length = 0;
      const added = await runShim(config(), env("ADD"));
      assert.equal(added.code, 0, added.stdout);
      assert.doesNotMatch(added.stdout, /STANDALONE/);
      assert.ok(added.stdout.endsWith("}\n"));
      const result = JSON.parse(added.stdout) as { ips: { address: string }[] };
      assert.equal(result.ips[0]?.address, "172.30.5.2/24");
      assert.deepEqual(deps.world.linkNames(`/run/netns/${pod}`), ["eth0"]);
      const checked = await runShim(config({ prevResult: result }), env("CHECK"));
      assert.deepEqual(plain(checked), { code: 0, stdout: "" });
      const deleted = await runShim(config(), env("DEL"));
      assert.deepEqual(plain(deleted), { code: 0, stdout: "" });
      assert.deepEqual(deps.world.linkNames(`/run/netns/${pod}`), []);
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

    it("answers for a CNI_NETNS the shim could not open as the standalone plugin does (code 3), serving it itself", async () => {
      events.length = 0;
      const missing = await runShim(config(), env("ADD", "/run/netns/no-such-pod"));
      assert.equal(missing.code, 1);
      assert.deepEqual(JSON.parse(missing.stdout), {
        cniVersion: "1.0.0",
        code: 3,
        msg: 'CNI_NETNS "/run/netns/no-such-pod" does not exist',
        details: "",
      });
      assert.deepEqual(
        events.map((e) => e.type),
        ["served"],
      );
    });

    it("refuses to wire the caller's own namespace (code 4), changing nothing", async () => {
      // The shim passes its own namespace; the fake kernel for it reports the real identity of what was passed.
      deps.world.addNamespace("/proc/self/ns/net");
      const own = await runShim(config(), env("ADD", "/proc/self/ns/net"));
      assert.equal(own.code, 1);
      const answer = JSON.parse(own.stdout) as { code: number; msg: string };
      assert.equal(answer.code, 4);
      assert.match(
        answer.msg,
        new RegExp(
          `CNI_NETNS "/proc/self/ns/net" is the caller's own network namespace \\(${OWN_NETNS.replace(/[[\]]/g, "\\$&")}\\)`,
        ),
      );
      assert.deepEqual(deps.world.linkNames("/proc/self/ns/net"), []);
      assert.deepEqual(deps.allReservations(), []);
    });

    it("sends a caller in another network namespace to the standalone plugin, with stdin intact", async () => {
      const other = await startCniService({ socketPath: join(dir, "other.sock"), deps, netns: "net:[1]" });
      const seen: CniServiceEvent[] = [];
      other.events.on((event) => seen.push(event));
      try {
        const stdin = config({ agentSocket: join(dir, "other.sock") });
        assert.deepEqual(plain(await runShim(stdin, env("ADD"))), { code: 0, stdout: `STANDALONE:${stdin}` });
        assert.equal(seen[0]?.type, "fallback");
      } finally {
        await other.close();
      }
    });

    it("replaces a stale socket file, refuses a live one, and removes its socket when closed", async () => {
      const path = join(dir, "stale.sock");
      const { server } = await rawServer(path, () => ({}));
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

    it("refuses to serve from a directory others can write to, or that is a symlink", async () => {
      const open = join(dir, "open");
      await mkdir(open);
      await chmod(open, 0o777);
      await assert.rejects(
        startCniService({ socketPath: join(open, "cni.sock"), deps, netns: OWN_NETNS }),
        /is writable by others \(mode 777\)/,
      );
      await chmod(open, 0o775);
      await assert.rejects(
        startCniService({ socketPath: join(open, "cni.sock"), deps, netns: OWN_NETNS }),
        /is writable by others/,
      );
      await symlink(join(dir, "run"), join(dir, "link"));
      await assert.rejects(
        startCniService({ socketPath: join(dir, "link", "cni.sock"), deps, netns: OWN_NETNS }),
        /not a directory \(a symlink\?\)/,
      );
      await assert.rejects(lstat(join(open, "cni.sock")), /ENOENT/);
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
        "[1,2]",
        '{"agentSocket": 5}',
        "{broken",
      ]) {
        assert.deepEqual(
          plain(await runShim(stdin, { CNI_COMMAND: "VERSION" })),
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

    it("reads agentSocket at the top level only (never from prevResult or args), the last one when repeated, as JSON.parse does", async () => {
      const decoy = join(dir, "decoy.sock");
      const real = join(dir, "real.sock");
      const decoyServer = await rawServer(decoy, () => ({ reply: formatResponse(0, "DECOY") }));
      const realServer = await rawServer(real, () => ({ reply: formatResponse(0, "REAL") }));
      try {
        const nested = `{"cniVersion":"1.0.0","name":"n","type":"trellis","prevResult":{"agentSocket":"${decoy}"},"args":{"x":["agentSocket","${decoy}"]},"agentSocket":"${real}"}`;
        assert.deepEqual(plain(await runShim(nested, { CNI_COMMAND: "ADD" })), { code: 0, stdout: "REAL\n" });
        const repeated = `{"agentSocket":"${decoy}","cniVersion":"1.0.0","agentSocket":"${real}"}`;
        assert.deepEqual(plain(await runShim(repeated, { CNI_COMMAND: "ADD" })), { code: 0, stdout: "REAL\n" });
        // Only inside prevResult: there is no top-level agentSocket, so the shim tries the default socket instead.
        const onlyNested = `{"cniVersion":"1.0.0","name":"n","type":"trellis","prevResult":{"agentSocket":"${decoy}","x":{"y":[1,true,null,"\\"}"]}}}`;
        await runShim(onlyNested, { CNI_COMMAND: "ADD" });
        assert.equal(decoyServer.requests.length, 0, "the decoy socket was never used");
        assert.equal(realServer.requests.length, 2);
      } finally {
        await closeServer(decoyServer.server);
        await closeServer(realServer.server);
      }
    });

    it(`refuses a stdin over ${MAX_CNI_STDIN_BYTES} bytes with the plugin's own error (code 6), never replaying it cut short`, async () => {
      const path = join(dir, "never.sock");
      const { server, requests } = await rawServer(path, () => ({ reply: formatResponse(0, "{}") }));
      try {
        const huge = stdinFor(path, `,"pad":"${"h".repeat(MAX_CNI_STDIN_BYTES)}"`);
        const out = await runShim(huge, { CNI_COMMAND: "ADD" });
        assert.equal(out.code, 1);
        assert.deepEqual(JSON.parse(out.stdout), {
          cniVersion: "1.1.0",
          code: 6,
          msg: `the network config on stdin is larger than ${MAX_CNI_STDIN_BYTES} bytes`,
          details: "",
        });
        assert.equal(requests.length, 0);
      } finally {
        await closeServer(server);
      }
    });

    it("sends only CNI_* variables and its namespace; falls back on a reply cut short, an unknown reply, a FALLBACK or silence", async () => {
      const path = join(dir, "raw.sock");
      const behaviours: { ready?: string; reply?: Buffer | string }[] = [
        { reply: '0 50\n{"cut":' },
        { reply: "HTTP/1.1 200 OK\n" },
        { ready: FALLBACK },
        {},
        { reply: "7\nno length" },
        { ready: "NOPE\n" },
      ];
      const { server, requests } = await rawServer(path, (n) => behaviours[n] ?? {});
      try {
        const stdin = stdinFor(path);
        for (const behaviour of behaviours) {
          const out = await runShim(stdin, { CNI_COMMAND: "ADD", CNI_IFNAME: "eth0", SECRET_TOKEN: "do-not-send" });
          assert.deepEqual(plain(out), { code: 0, stdout: `STANDALONE:${stdin}` }, JSON.stringify(behaviour));
        }
        assert.deepEqual(parseRequest(requests[0] ?? Buffer.alloc(0)), {
          kind: "request",
          request: {
            netns: OWN_NETNS,
            env: { CNI_COMMAND: "ADD", CNI_IFNAME: "eth0" },
            target: { kind: "none" },
            stdin,
          },
        });
      } finally {
        await closeServer(server);
      }
    });

    it(`a service that does not say READY within ${SHIM_READY_TIMEOUT_MS} ms (a stopped agent) gets no GO, and the standalone plugin runs`, async () => {
      const path = join(dir, "stalled.sock");
      const { server, requests, gos } = await rawServer(path, () => ({
        ready: "silent",
        reply: formatResponse(0, "LATE"),
      }));
      try {
        const out = await runShim(stdinFor(path), { CNI_COMMAND: "ADD" });
        assert.equal(out.stdout, `STANDALONE:${stdinFor(path)}`);
        assert.ok(
          out.ms >= SHIM_READY_TIMEOUT_MS - 50 && out.ms < SHIM_READY_TIMEOUT_MS + 2000,
          `fell back after ${Math.round(out.ms)} ms`,
        );
        assert.equal(requests.length, 1);
        assert.deepEqual(gos, [], "the service was never told to go ahead");
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
      const { server } = await rawServer(path, () => ({ reply: formatResponse(3, '{"code":3}') }));
      try {
        assert.deepEqual(plain(await runShim(stdinFor(path), { CNI_COMMAND: "DEL" })), {
          code: 3,
          stdout: '{"code":3}\n',
        });
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
