// The request socket's scheduler. Measured: concurrent dumps on one socket fail with EBUSY from the kernel, and a
// reply arriving while a dump is being collected breaks the package's multipart reassembly ("Multipart message not
// terminated properly") — so a dump runs alone. Single-reply requests are matched by sequence number and overlap.
// Each request is also bounded by a timeout and by close().
import type { RtNetlinkSocket } from "netlink/dist/rt/rt.js";
import { translateError } from "./errors.js";

// A reply never takes this long; the timeout only guards against a lost reply hanging a caller forever.
const REQUEST_TIMEOUT_MS = 10_000;

/** Translated like a kernel errno, so a call after close() fails as NetlinkError with errno EBADF. */
export function closedError(): Error {
  return Object.assign(new Error("the kernel handle is closed"), { code: "EBADF" });
}

/**
 * Dumps need the socket to themselves; single-reply requests (changes, a get) are matched by sequence number and may
 * be in flight together. Up to this many overlap, which is what makes programming hundreds of peers fast.
 */
const MAX_IN_FLIGHT = 64;

interface Waiter {
  readonly exclusive: boolean;
  readonly start: () => void;
}

export class RequestQueue {
  private socket: RtNetlinkSocket | undefined;
  private active = 0;
  private activeExclusive = false;
  private readonly waiting: Waiter[] = [];
  private readonly inFlight = new Set<(error: Error) => void>();

  constructor(socket: RtNetlinkSocket) {
    this.socket = socket;
    // A failed receive surfaces as the pending request's timeout; without a listener it would crash the process.
    socket.socket.on("error", () => undefined);
  }

  get closed(): boolean {
    return this.socket === undefined;
  }

  /**
   * Runs `send` when the socket is free for it (a dump — `exclusive` — waits for everything before it and blocks
   * what comes after); any failure comes back translated, naming the operation and the object.
   */
  async request<T>(
    operation: string,
    object: string,
    send: (socket: RtNetlinkSocket) => Promise<T>,
    exclusive = false,
  ): Promise<T> {
    await this.admit(exclusive);
    try {
      return await this.sendNow(send);
    } catch (error) {
      throw translateError(error, operation, object);
    } finally {
      this.release(exclusive);
    }
  }

  /** Fails every request in flight and every queued one with EBADF, and closes the socket. */
  close(): void {
    const socket = this.socket;
    if (socket === undefined) return;
    this.socket = undefined;
    for (const abort of [...this.inFlight]) abort(closedError());
    socket.socket.close();
    // Queued requests start and fail at once in sendNow().
    for (const waiter of this.waiting.splice(0)) waiter.start();
  }

  private fits(exclusive: boolean): boolean {
    return exclusive ? this.active === 0 : !this.activeExclusive && this.active < MAX_IN_FLIGHT;
  }

  private admit(exclusive: boolean): Promise<void> {
    if (this.waiting.length === 0 && this.fits(exclusive)) {
      this.take(exclusive);
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      this.waiting.push({ exclusive, start: resolve });
    });
  }

  private take(exclusive: boolean): void {
    this.active += 1;
    if (exclusive) this.activeExclusive = true;
  }

  private release(exclusive: boolean): void {
    this.active -= 1;
    if (exclusive) this.activeExclusive = false;
    // First come, first served: stop at the first waiter that does not fit yet.
    while (this.waiting.length > 0) {
      const next = this.waiting[0];
      if (next === undefined || !this.fits(next.exclusive)) break;
      this.waiting.shift();
      this.take(next.exclusive);
      next.start();
    }
  }

  private sendNow<T>(send: (socket: RtNetlinkSocket) => Promise<T>): Promise<T> {
    const socket = this.socket;
    if (socket === undefined) return Promise.reject(closedError());
    return new Promise<T>((resolve, reject) => {
      const finish = (settle: () => void): void => {
        clearTimeout(timer);
        this.inFlight.delete(fail);
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
      this.inFlight.add(fail);
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
