// The request socket, used strictly one request at a time. Measured: concurrent dumps on one socket fail with EBUSY
// from the kernel, and a reply arriving while a dump is being collected breaks the package's multipart reassembly
// ("Multipart message not terminated properly"). Each request is also bounded by a timeout and by close().
import type { RtNetlinkSocket } from "netlink/dist/rt/rt.js";
import { translateError } from "./errors.js";

// A reply never takes this long; the timeout only guards against a lost reply hanging a caller forever.
const REQUEST_TIMEOUT_MS = 10_000;

/** Translated like a kernel errno, so a call after close() fails as NetlinkError with errno EBADF. */
export function closedError(): Error {
  return Object.assign(new Error("the kernel handle is closed"), { code: "EBADF" });
}

export class RequestQueue {
  private socket: RtNetlinkSocket | undefined;
  private tail: Promise<unknown> = Promise.resolve();
  private abortInFlight: ((error: Error) => void) | undefined;

  constructor(socket: RtNetlinkSocket) {
    this.socket = socket;
    // A failed receive surfaces as the pending request's timeout; without a listener it would crash the process.
    socket.socket.on("error", () => undefined);
  }

  get closed(): boolean {
    return this.socket === undefined;
  }

  /** Queues `send`; any failure comes back translated, naming the operation and the object. */
  request<T>(operation: string, object: string, send: (socket: RtNetlinkSocket) => Promise<T>): Promise<T> {
    const result = this.tail
      .then(() => this.sendNow(send))
      .catch((error: unknown): never => {
        throw translateError(error, operation, object);
      });
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Fails the request in flight and every queued one with EBADF, and closes the socket. */
  close(): void {
    const socket = this.socket;
    if (socket === undefined) return;
    this.socket = undefined;
    this.abortInFlight?.(closedError());
    socket.socket.close();
  }

  private sendNow<T>(send: (socket: RtNetlinkSocket) => Promise<T>): Promise<T> {
    const socket = this.socket;
    if (socket === undefined) return Promise.reject(closedError());
    return new Promise<T>((resolve, reject) => {
      const finish = (settle: () => void): void => {
        clearTimeout(timer);
        this.abortInFlight = undefined;
        settle();
      };
      const fail = (error: unknown): void => {
        finish(() => {
          reject(error instanceof Error ? error : new Error(String(error)));
        });
      };
      const timer = setTimeout(() => {
        fail(new Error("Timeout has been reached"));
      }, REQUEST_TIMEOUT_MS);
      this.abortInFlight = fail;
      // Through a promise, so that an encoder throwing synchronously still clears the timer.
      Promise.resolve()
        .then(() => send(socket))
        .then((value) => {
          finish(() => {
            resolve(value);
          });
        }, fail);
    });
  }
}
