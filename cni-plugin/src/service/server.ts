// The CNI service: the plugin's work done inside a long-running process (the node's agent) for the native shim, so
// that a pod operation costs no Node start-up (docs/decisions/0011). Same runPlugin(), same adapters, same answers
// as the standalone plugin; the shim falls back to that plugin whenever this service cannot answer.
//
// The socket is root-only (0600) in a directory only root can write to: whoever can talk to it can wire any
// namespace. A caller in another network namespace than ours is told to fall back, since our host kernel would be
// the wrong one. The pod's namespace is the one the caller opened and passed (protocol.ts): never a path we
// would resolve in our own mount namespace. The socket carries descriptors, which Node's net module cannot, so
// connections go through the usocket package.
import { closeSync, openSync } from "node:fs";
import { chmod, lstat, mkdir, mkdtemp, rename, rm, unlink } from "node:fs/promises";
import { connect } from "node:net";
import { basename, dirname, join } from "node:path";
import { UServer, type USocket } from "usocket";
import { Emitter } from "#lib/emitter.js";
import { TrellisError } from "#lib/errors.js";
import { MAX_CNI_STDIN_BYTES } from "#lib/names.js";
import type { PluginDeps } from "../deps.js";
import { runPlugin } from "../plugin.js";
import { podNamespaceError } from "../real-deps.js";
import { FALLBACK, formatResponse, GO, MAX_HEADER_BYTES, parseRequest, READY, type CniRequest } from "./protocol.js";

/** Larger than any request the standalone plugin would accept: that plugin refuses it itself. */
const MAX_REQUEST_BYTES = MAX_HEADER_BYTES + MAX_CNI_STDIN_BYTES;
/** A caller that has not sent its whole request after this long is dropped (the shim then falls back). */
export const REQUEST_READ_TIMEOUT_MS = 10_000;
/** After READY, a shim says GO at once or has given up; waiting longer only holds the descriptor. */
export const GO_TIMEOUT_MS = 10_000;

export type CniServiceEvent =
  | { readonly type: "served"; readonly command: string; readonly exitCode: number; readonly ms: number }
  | { readonly type: "fallback"; readonly reason: string }
  | { readonly type: "abandoned"; readonly reason: string };

export interface CniServiceOptions {
  readonly socketPath: string;
  readonly deps: PluginDeps;
  /** This process's network namespace, as readlink(/proc/self/ns/net) shows it. */
  readonly netns: string;
  readonly now?: () => number;
}

export interface CniService {
  readonly events: Emitter<CniServiceEvent>;
  readonly socketPath: string;
  close(): Promise<void>;
}

/** The socket cannot be served: CONFLICT when another process serves it, IO otherwise. */
export class CniSocketError extends TrellisError {}

/** true when something answers on the path: another live service; a dead socket file is stale. */
function isLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => {
      resolve(false);
    });
  });
}

/** The socket's directory decides who can replace it: it must be a real directory of ours that others cannot write. */
async function checkDirectory(dir: string): Promise<void> {
  const info = await lstat(dir).catch((error: unknown) => {
    throw new CniSocketError(
      "IO",
      `cannot use the directory of --cni-socket ${dir}: ${(error as { code?: string }).code ?? String(error)}`,
      { cause: error },
    );
  });
  const euid = process.geteuid?.() ?? 0;
  if (!info.isDirectory())
    throw new CniSocketError(
      "IO",
      `the directory of --cni-socket ${dir} is not a directory (a symlink?); refusing to serve from it`,
    );
  if (info.uid !== euid)
    throw new CniSocketError(
      "IO",
      `the directory of --cni-socket ${dir} is owned by uid ${info.uid}, not ${euid}; refusing to serve from it`,
    );
  if ((info.mode & 0o022) !== 0)
    throw new CniSocketError(
      "IO",
      `the directory of --cni-socket ${dir} is writable by others (mode ${(info.mode & 0o777).toString(8)}); refusing to serve from it`,
    );
}

async function removeStale(path: string): Promise<void> {
  const existing = await lstat(path).catch(() => undefined);
  if (existing === undefined) return;
  if (!existing.isSocket())
    throw new CniSocketError("IO", `--cni-socket ${path} exists and is not a socket; refusing to replace it`);
  if (await isLive(path))
    throw new CniSocketError("CONFLICT", `--cni-socket ${path} is already served by another process`);
  await unlink(path);
}

/**
 * Binds inside a private directory (0700, ours), makes the socket 0600 there — where nobody can have put a symlink
 * — and renames it into place: never a moment at another path or mode, and no umask games.
 */
async function listenAt(server: UServer, path: string): Promise<void> {
  const privateDir = await mkdtemp(join(dirname(path), `.${basename(path)}.`));
  try {
    const temp = join(privateDir, "s");
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(temp, () => {
        server.removeAllListeners("error");
        resolve();
      });
    });
    await chmod(temp, 0o600);
    await rename(temp, path);
  } finally {
    await rm(privateDir, { recursive: true, force: true });
  }
}

/** The plugin's ports for one request: the pod's namespace is the caller's descriptor; never wire the caller's own. */
function requestDeps(base: PluginDeps, request: CniRequest, passed: number | undefined, ownNetns: string): PluginDeps {
  return {
    hostKernel: () => base.hostKernel(),
    podKernel: (netns) => {
      if (passed !== undefined) return base.podKernel(netns, `/proc/self/fd/${passed}`);
      // The shim could not open it (or sent nothing for it): the same answer the standalone plugin gives.
      return Promise.reject(
        podNamespaceError(netns, request.target.kind === "errno" ? request.target.errno : undefined),
      );
    },
    callerNamespaces: () => [request.netns, ownNetns],
    store: (dataDir) => base.store(dataDir),
    podRecords: (dir, network) => base.podRecords(dir, network),
    readFile: (path) => base.readFile(path),
  };
}

export async function startCniService(options: CniServiceOptions): Promise<CniService> {
  const events = new Emitter<CniServiceEvent>();
  const now = options.now ?? ((): number => performance.now());
  const connections = new Set<USocket>();

  const serveConnection = (socket: USocket): void => {
    connections.add(socket);
    const fds: number[] = [];
    const chunks: Buffer[] = [];
    let size = 0;
    let phase: "request" | "ready" | "working" | "done" = "request";
    let request: CniRequest | undefined;
    let confirm = "";
    let timer = setTimeout(() => {
      finish("abandoned", "the request did not arrive in time");
    }, REQUEST_READ_TIMEOUT_MS);
    const closeFds = (): void => {
      for (const fd of fds.splice(0)) closeSync(fd);
    };
    const finish = (kind: "fallback" | "abandoned" | undefined, reason = "", answer?: Buffer | string): void => {
      if (phase === "done") return;
      phase = "done";
      clearTimeout(timer);
      closeFds();
      connections.delete(socket);
      if (kind !== undefined) events.emit({ type: kind, reason });
      if (answer === undefined) socket.destroy();
      else socket.write(answer, () => socket.destroy());
    };
    const run = async (ready: CniRequest): Promise<void> => {
      phase = "working";
      clearTimeout(timer);
      const started = now();
      const outcome = await runPlugin({
        env: ready.env,
        stdin: ready.stdin,
        deps: requestDeps(options.deps, ready, fds[0], options.netns),
      });
      events.emit({
        type: "served",
        command: ready.env.CNI_COMMAND ?? "",
        exitCode: outcome.exitCode,
        ms: now() - started,
      });
      finish(undefined, "", formatResponse(outcome.exitCode, outcome.stdout));
    };
    const onRequest = (parsed: CniRequest): void => {
      if (parsed.netns !== options.netns) {
        finish("fallback", `caller in namespace ${parsed.netns}, service in ${options.netns}`, FALLBACK);
        return;
      }
      if ((parsed.target.kind === "fd") !== (fds.length === 1)) {
        finish(
          "fallback",
          `request announced ${parsed.target.kind === "fd" ? "a" : "no"} namespace descriptor and carried ${fds.length}`,
          FALLBACK,
        );
        return;
      }
      // The descriptor arrives without O_CLOEXEC: keep a copy that has it, so no child process inherits it.
      const passed = fds.pop();
      if (passed !== undefined) {
        fds.push(openSync(`/proc/self/fd/${passed}`, "r"));
        closeSync(passed);
      }
      request = parsed;
      phase = "ready";
      clearTimeout(timer);
      timer = setTimeout(() => {
        finish("abandoned", "the shim did not confirm in time");
      }, GO_TIMEOUT_MS);
      // A shim that gave up has closed its end: the write fails (usocket reports it only here, not as "error").
      socket.write(READY, (error?: Error | null) => {
        if (error !== undefined && error !== null) finish("abandoned", "the shim hung up before confirming");
      });
    };
    socket.on("fds", (received) => {
      fds.push(...received);
      if (fds.length > 1 || phase !== "request") finish("fallback", "unexpected descriptors", FALLBACK);
    });
    socket.on("data", (chunk: Buffer) => {
      if (phase === "request") {
        size += chunk.length;
        if (size > MAX_REQUEST_BYTES) {
          finish("fallback", `request larger than ${MAX_REQUEST_BYTES} bytes`, FALLBACK);
          return;
        }
        chunks.push(chunk);
        const parsed = parseRequest(Buffer.concat(chunks));
        if (parsed.kind === "invalid") finish("fallback", parsed.reason, FALLBACK);
        else if (parsed.kind === "request") onRequest(parsed.request);
      } else if (phase === "ready" && request !== undefined) {
        confirm += chunk.toString("latin1");
        if (confirm === GO) void run(request);
        else if (!GO.startsWith(confirm)) finish("abandoned", "the shim sent something other than GO");
      }
    });
    // The shim gave up (its bound passed) or went away: nothing is done for it.
    socket.on("end", () => {
      if (phase === "request" || phase === "ready")
        finish(
          "abandoned",
          `the shim hung up before ${phase === "request" ? "its request was complete" : "confirming"}`,
        );
    });
    // Writing READY to a shim that already gave up fails here rather than at "end".
    socket.on("error", () => {
      if (phase === "request" || phase === "ready") finish("abandoned", "the shim hung up before confirming");
    });
  };

  const dir = dirname(options.socketPath);
  await mkdir(dir, { recursive: true, mode: 0o755 }).catch((error: unknown) => {
    throw new CniSocketError(
      "IO",
      `cannot create the directory of --cni-socket ${options.socketPath}: ${(error as { code?: string }).code ?? String(error)}`,
      { cause: error },
    );
  });
  await checkDirectory(dir);
  await removeStale(options.socketPath);
  const server = new UServer();
  try {
    await listenAt(server, options.socketPath);
  } catch (error) {
    server.close();
    throw new CniSocketError(
      "IO",
      `cannot listen on --cni-socket ${options.socketPath}: ${(error as { code?: string }).code ?? String(error)}`,
      { cause: error },
    );
  }
  server.on("connection", serveConnection);
  server.on("error", () => undefined); // accept failures (EMFILE) pause nothing we can mend; shims fall back

  return {
    events,
    socketPath: options.socketPath,
    close: async () => {
      server.close();
      for (const socket of connections) socket.destroy();
      connections.clear();
      await unlink(options.socketPath).catch(() => undefined);
    },
  };
}
