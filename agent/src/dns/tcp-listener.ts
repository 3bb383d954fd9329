// A TCP listener (RFC 7766): messages framed by a 2-byte length, several per connection, answered as they are ready
// (possibly out of order, which the RFC allows). Bounded: `maxConnections` (more are closed on accept), an idle
// timeout, at most `maxPendingPerConnection` queries in work before reading pauses, a slow reader is cut off, and a
// frame longer than `maxQueryBytes` gets FORMERR and the connection closes (it cannot be re-synchronised cheaply).

import { createServer, type Server, type Socket } from "node:net";
import type { QueryHandler } from "./handler.js";
import type { ListenAddress, ResolvedOptions } from "./options.js";
import type { TcpCounters } from "./stats.js";
import type { ListenerHooks } from "./udp-listener.js";
import { headerOnlyResponse, RCODE, readHeader } from "./wire.js";

const MAX_UNSENT_BYTES = 256 * 1024;

export class TcpListener {
  private readonly connections = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly address: ListenAddress,
  ) {}

  static bind(
    at: ListenAddress,
    handler: QueryHandler,
    hooks: ListenerHooks,
    options: ResolvedOptions,
    counters: TcpCounters,
  ): Promise<TcpListener> {
    const server = createServer({ noDelay: true });
    server.maxConnections = options.tcp.maxConnections;
    server.on("drop", () => {
      counters.rejected += 1;
    });
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host: at.address, port: at.port, exclusive: true }, () => {
        server.off("error", reject);
        const address = server.address();
        const listener = new TcpListener(server, {
          address: at.address,
          port: typeof address === "object" && address !== null ? address.port : at.port,
        });
        server.on("error", (error) => {
          hooks.onError(`tcp ${at.address}`, error);
        });
        server.on("connection", (socket) => {
          listener.serve(socket, handler, hooks, options, counters);
        });
        resolve(listener);
      });
    });
  }

  private serve(
    socket: Socket,
    handler: QueryHandler,
    hooks: ListenerHooks,
    options: ResolvedOptions,
    counters: TcpCounters,
  ): void {
    counters.accepted += 1;
    counters.open += 1;
    this.connections.add(socket);
    let buffered: Buffer = Buffer.alloc(0);
    let pending = 0;
    let closing = false;
    socket.setTimeout(options.tcp.idleTimeoutMs);
    socket.on("timeout", () => {
      counters.idleClosed += 1;
      socket.destroy();
    });
    socket.on("error", () => undefined); // resets by clients are normal; the close below cleans up
    socket.on("close", () => {
      counters.open -= 1;
      this.connections.delete(socket);
    });

    const reply = (answer: Buffer | undefined): void => {
      pending -= 1;
      if (answer !== undefined && !socket.destroyed) {
        const frame = Buffer.allocUnsafe(answer.length + 2);
        frame.writeUInt16BE(answer.length, 0);
        answer.copy(frame, 2);
        socket.write(frame);
        if (socket.writableLength > MAX_UNSENT_BYTES) socket.destroy(); // a client that does not read
      }
      if (closing && pending === 0) socket.end();
      if (socket.isPaused() && pending < options.tcp.maxPendingPerConnection) {
        socket.resume();
        drain();
      }
    };

    const drain = (): void => {
      while (!closing && buffered.length >= 2 && pending < options.tcp.maxPendingPerConnection) {
        const length = buffered.readUInt16BE(0);
        if (length > options.maxQueryBytes || length < 12) {
          // Answer FORMERR when the header is readable, then stop reading this connection.
          const header = buffered.length >= 14 ? readHeader(buffered.subarray(2, 14)) : undefined;
          if (header === undefined && length >= 12) return; // wait for the header
          closing = true;
          pending += 1;
          reply(header === undefined ? undefined : headerOnlyResponse(header, RCODE.FORMERR));
          return;
        }
        if (buffered.length < 2 + length) return;
        const message = Buffer.from(buffered.subarray(2, 2 + length));
        buffered = buffered.subarray(2 + length);
        pending += 1;
        try {
          const result = handler.handle(message, "tcp");
          if (result instanceof Promise)
            result.then(reply, (error: unknown) => {
              hooks.onError("tcp", error);
              reply(undefined);
            });
          else reply(result);
        } catch (error) {
          hooks.onError("tcp", error);
          reply(undefined);
        }
      }
      if (pending >= options.tcp.maxPendingPerConnection) socket.pause();
    };

    socket.on("data", (chunk: Buffer) => {
      if (closing) return;
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      drain();
    });
  }

  close(): Promise<void> {
    for (const socket of this.connections) socket.destroy();
    return new Promise((resolve) => {
      this.server.close(() => {
        resolve();
      });
    });
  }
}
