// Entering a network namespace for one synchronous step. A netlink socket, like any socket or /proc/sys/net file,
// belongs to the namespace its *thread* was in when it was opened; setns(2) switches only the calling thread. So we
// switch the main thread, open what is needed, and switch back before anything else can run on it.
import { closeSync, openSync } from "node:fs";
import { TrellisError } from "../errors.js";
import { syscallNumber, syscallSync } from "../syscall.js";
import { errnoByMessage } from "./errors.js";

const CLONE_NEWNET = 0x40000000n;
const NAMED_NETNS_DIR = "/run/netns";

/** Thrown when a namespace path cannot be used; code NOT_FOUND, INVALID_ARGUMENT or PERMISSION_DENIED. */
export class NetnsError extends TrellisError {
  constructor(
    code: "NOT_FOUND" | "INVALID_ARGUMENT" | "PERMISSION_DENIED" | "IO",
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** "/run/netns/x" and "/proc/123/ns/net" stay as they are; a bare name means /run/netns/<name> (`ip netns`). */
export function netnsPath(netns: string): string {
  return netns.includes("/") ? netns : `${NAMED_NETNS_DIR}/${netns}`;
}

/** An open namespace file: keeps the namespace reachable for later switches, whatever happens to its path. */
export class NetnsHandle {
  private fdOrClosed: number | undefined;

  private constructor(
    readonly path: string,
    fd: number,
  ) {
    this.fdOrClosed = fd;
  }

  static open(netns: string): NetnsHandle {
    const path = netnsPath(netns);
    try {
      return new NetnsHandle(path, openSync(path, "r"));
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === "ENOENT")
        throw new NetnsError("NOT_FOUND", path, `network namespace ${path} does not exist`, { cause: error });
      if (code === "EACCES" || code === "EPERM") {
        throw new NetnsError("PERMISSION_DENIED", path, `opening network namespace ${path} needs root`, {
          cause: error,
        });
      }
      throw new NetnsError("IO", path, `cannot open network namespace ${path}: ${String(code)}`, { cause: error });
    }
  }

  get fd(): number {
    if (this.fdOrClosed === undefined)
      throw new NetnsError("INVALID_ARGUMENT", this.path, `network namespace handle ${this.path} is closed`);
    return this.fdOrClosed;
  }

  close(): void {
    if (this.fdOrClosed === undefined) return;
    closeSync(this.fdOrClosed);
    this.fdOrClosed = undefined;
  }
}

function setns(fd: number, path: string): void {
  const nr = syscallNumber("setns");
  if (nr === undefined) throw new NetnsError("IO", path, `setns is not available on ${process.arch}`);
  try {
    syscallSync(nr, BigInt(fd), CLONE_NEWNET);
  } catch (error) {
    const errno = error instanceof Error ? errnoByMessage(error.message) : undefined;
    if (errno === "EPERM")
      throw new NetnsError(
        "PERMISSION_DENIED",
        path,
        `entering network namespace ${path} needs root or CAP_SYS_ADMIN`,
        { cause: error },
      );
    if (errno === "EINVAL")
      throw new NetnsError("INVALID_ARGUMENT", path, `${path} is not a network namespace`, { cause: error });
    throw new NetnsError("IO", path, `entering network namespace ${path} failed: ${errno ?? String(error)}`, {
      cause: error,
    });
  }
}

/**
 * Runs `fn` with the calling thread inside the namespace, then switches back, also when `fn` throws. `fn` must be
 * synchronous and must only open things (sockets, files): any other work would also run inside the namespace.
 */
export function withNetns<T>(netns: string | NetnsHandle, fn: () => T): T {
  const target = typeof netns === "string" ? NetnsHandle.open(netns) : netns;
  // /proc/thread-self, not /proc/self: the namespace to come back to is this thread's own.
  const home = openSync("/proc/thread-self/ns/net", "r");
  let result: T;
  try {
    setns(target.fd, target.path);
    try {
      result = fn();
    } finally {
      setns(home, "/proc/thread-self/ns/net");
    }
  } finally {
    closeSync(home);
    if (typeof netns === "string") target.close();
  }
  if (result instanceof Promise) {
    result.catch(() => undefined); // its failure is reported as this TypeError instead
    throw new TypeError("withNetns needs a synchronous callback: an async one would continue outside the namespace");
  }
  return result;
}
