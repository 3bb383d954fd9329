// Types for the parts of the usocket package (unix sockets that carry file descriptors) the CNI service uses.
declare module "usocket" {
  import type { Duplex } from "node:stream";

  export class USocket extends Duplex {
    constructor(options?: { fd?: number; path?: string });
    on(event: "fds", listener: (fds: number[]) => void): this;
    on(event: "data", listener: (chunk: Buffer) => void): this;
    on(event: "connected" | "end" | "close", listener: () => void): this;
    on(event: "error", listener: (error: Error) => void): this;
    /** The callback gets the write's error: usocket reports a failed write (EPIPE) nowhere else. */
    write(chunk: Buffer | string, callback?: (error?: Error | null) => void): boolean;
    /** Closes at once, without "error" or "close" events. */
    destroy(): this;
  }

  export class UServer {
    listen(path: string, callback?: () => void): void;
    on(event: "connection", listener: (socket: USocket) => void): this;
    on(event: "listening", listener: () => void): this;
    on(event: "error", listener: (error: Error) => void): this;
    once(event: "listening", listener: () => void): this;
    once(event: "error", listener: (error: Error) => void): this;
    removeAllListeners(event?: string): this;
    close(): void;
  }
}
