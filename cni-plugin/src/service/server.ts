// The CNI service: the plugin's work done inside a long-running process (the node's agent) for the native shim, so
// that a pod operation costs no Node start-up (docs/decisions/0011). Same runPlugin(), same adapters, same answers
// as the standalone plugin; the shim falls back to that plugin whenever this service cannot answer.
//
// The socket is root-only (0600, created under umask 077): whoever can talk to it can wire any namespace. A caller
// in another network namespace than ours is told to fall back, since our host kernel would be the wrong one.
import { chmod, lstat, mkdir, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { connect, createServer, type Server, type Socket } from "node:net";
import { Emitter } from "../../../lib/src/emitter.js";
import { TrellisError } from "../../../lib/src/errors.js";
import { MAX_CONFIG_BYTES } from "../config.js";
import type { PluginDeps } from "../deps.js";
import { runPlugin } from "../plugin.js";
import { FALLBACK, formatResponse, MAX_HEADER_BYTES, parseRequest } from "./protocol.js";

/** Larger than any request the standalone plugin would accept: that plugin refuses it itself. */
const MAX_REQUEST_BYTES = MAX_HEADER_BYTES + MAX_CONFIG_BYTES;
/** A caller that has not sent its whole request after this long is dropped (the shim then falls back). */
export const REQUEST_READ_TIMEOUT_MS = 10_000;

export type CniServiceEvent =
  | { readonly type: "served"; readonly command: string; readonly exitCode: number; readonly ms: number }
  | { readonly type: "fallback"; readonly reason: string };

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

async function removeStale(path: string): Promise<void> {
  const existing = await lstat(path).catch(() => undefined);
  if (existing === undefined) return;
  if (!existing.isSocket())
    throw new CniSocketError("IO", `--cni-socket ${path} exists and is not a socket; refusing to replace it`);
  if (await isLive(path))
    throw new CniSocketError("CONFLICT", `--cni-socket ${path} is already served by another process`);
  await unlink(path);
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    // Bound with umask 077, so the socket is never reachable by others, not even for a moment.
    const previous = process.umask(0o077);
    try {
      server.listen(path, () => {
        server.off("error", reject);
        resolve();
      });
    } finally {
      process.umask(previous);
    }
  });
}

export async function startCniService(options: CniServiceOptions): Promise<CniService> {
  const events = new Emitter<CniServiceEvent>();
  const now = options.now ?? ((): number => performance.now());
  const connections = new Set<Socket>();

  const fallback = (socket: Socket, reason: string): void => {
    events.emit({ type: "fallback", reason });
    socket.end(FALLBACK);
  };

  const serve = async (socket: Socket, bytes: Buffer): Promise<void> => {
    const parsed = parseRequest(bytes);
    if (parsed.kind !== "request") {
      fallback(socket, parsed.kind === "invalid" ? parsed.reason : "request ended inside the header");
      return;
    }
    const { request } = parsed;
    if (request.netns !== options.netns) {
      fallback(socket, `caller in namespace ${request.netns}, service in ${options.netns}`);
      return;
    }
    const started = now();
    const outcome = await runPlugin({ env: request.env, stdin: request.stdin, deps: options.deps });
    events.emit({
      type: "served",
      command: request.env.CNI_COMMAND ?? "",
      exitCode: outcome.exitCode,
      ms: now() - started,
    });
    socket.end(formatResponse(outcome.exitCode, outcome.stdout));
  };

  // Half-open: the shim ends its side after the request and still reads our answer.
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    connections.add(socket);
    socket.on("close", () => connections.delete(socket));
    socket.on("error", () => undefined); // a shim that went away: nothing to answer
    socket.setTimeout(REQUEST_READ_TIMEOUT_MS, () => {
      socket.destroy();
    });
    const chunks: Buffer[] = [];
    let size = 0;
    socket.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REQUEST_BYTES + 1) {
        fallback(socket, `request larger than ${MAX_REQUEST_BYTES} bytes`);
        socket.removeAllListeners("data");
        return;
      }
      chunks.push(chunk);
    });
    socket.on("end", () => {
      if (size > MAX_REQUEST_BYTES + 1) return;
      socket.setTimeout(0); // the plugin's own work may take a while (IPAM lock); the shim has its own timeout
      void serve(socket, Buffer.concat(chunks));
    });
  });

  try {
    await mkdir(dirname(options.socketPath), { recursive: true, mode: 0o755 });
  } catch (error) {
    throw new CniSocketError(
      "IO",
      `cannot create the directory of --cni-socket ${options.socketPath}: ${(error as { code?: string }).code ?? String(error)}`,
      { cause: error },
    );
  }
  await removeStale(options.socketPath);
  try {
    await listen(server, options.socketPath);
    await chmod(options.socketPath, 0o600);
  } catch (error) {
    server.close();
    throw new CniSocketError(
      "IO",
      `cannot listen on --cni-socket ${options.socketPath}: ${(error as { code?: string }).code ?? String(error)}`,
      { cause: error },
    );
  }

  return {
    events,
    socketPath: options.socketPath,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        for (const socket of connections) socket.destroy();
      });
    },
  };
}
