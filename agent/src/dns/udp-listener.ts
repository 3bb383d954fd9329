// A UDP listener: each datagram is one query, answered to its source. Nothing is queued in our heap beyond the
// forwarder's bounded in-flight set: bursts wait in the socket's kernel receive buffer, or are dropped there.

import { createSocket, type Socket } from "node:dgram";
import { isIPv6 } from "node:net";
import type { QueryHandler } from "./handler.js";
import type { ListenAddress } from "./options.js";

export interface ListenerHooks {
  /** A handler bug or a socket error: reported, never thrown (the server must not crash on any input). */
  onError(where: string, error: unknown): void;
}

export class UdpListener {
  private constructor(
    private readonly socket: Socket,
    readonly address: ListenAddress,
  ) {}

  static bind(
    at: ListenAddress,
    handler: QueryHandler,
    hooks: ListenerHooks,
    receiveBufferBytes: number | undefined,
  ): Promise<UdpListener> {
    const socket = createSocket({
      type: isIPv6(at.address.split("%")[0] ?? "") ? "udp6" : "udp4",
      ...(receiveBufferBytes === undefined ? {} : { recvBufferSize: receiveBufferBytes }),
    });
    return new Promise((resolve, reject) => {
      const onBindError = (error: Error): void => {
        socket.close();
        reject(error);
      };
      socket.once("error", onBindError);
      socket.bind({ address: at.address, port: at.port, exclusive: true }, () => {
        socket.off("error", onBindError);
        const where = `udp ${at.address}`;
        socket.on("error", (error) => {
          hooks.onError(where, error);
        });
        socket.on("message", (msg, rinfo) => {
          const send = (answer: Buffer | undefined): void => {
            if (answer === undefined) return;
            try {
              socket.send(answer, rinfo.port, rinfo.address, (error) => {
                if (error !== null) hooks.onError(where, error);
              });
            } catch {
              // Closed while an upstream answer was pending: nothing to send it on.
            }
          };
          try {
            const result = handler.handle(msg, "udp");
            if (result instanceof Promise)
              result.then(send, (error: unknown) => {
                hooks.onError(where, error);
              });
            else send(result);
          } catch (error) {
            hooks.onError(where, error);
          }
        });
        resolve(new UdpListener(socket, { address: at.address, port: socket.address().port }));
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      try {
        this.socket.close(() => {
          resolve();
        });
      } catch {
        resolve(); // already closed
      }
    });
  }
}
