// Entering a network namespace for one synchronous step. A netlink socket, like any socket or /proc/sys/net file,
// belongs to the namespace its *thread* was in when it was opened; setns(2) switches only the calling thread. So we
// switch the main thread, open what is needed, and switch back before anything else can run on it.
//
// Failing to switch back is fatal: every socket the process opened afterwards (etcd, HTTP, the next pod's netlink
// socket) would live in the pod's namespace. The thread is then poisoned — every later withNetns() refuses — and the
// fatal handler the entry point installed ends the process (docs/operations.md, "Exit codes").
import { closeSync, fstatSync, openSync } from "node:fs";
import { TrellisError } from "../errors.js";
import { syscallNumber, syscallSync } from "../syscall.js";
import { errnoByMessage } from "./errors.js";

const CLONE_NEWNET = 0x40000000n;
const NAMED_NETNS_DIR = "/run/netns";
const THREAD_NETNS = "/proc/thread-self/ns/net";

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

/** The thread could not return to its own namespace: nothing it opens can be trusted any more. */
export class NamespaceEscapeError extends TrellisError {
  constructor(
    readonly target: string,
    options?: { cause?: unknown },
  ) {
    super(
      "FATAL",
      `could not return from network namespace ${target} to this process's own: stopping, as every later socket would open inside it`,
      options,
    );
  }
}

/** "/run/netns/x" and "/proc/123/ns/net" stay as they are; a bare name means /run/netns/<name> (`ip netns`). */
export function netnsPath(netns: string): string {
  return netns.includes("/") ? netns : `${NAMED_NETNS_DIR}/${netns}`;
}

/** A namespace's identity as readlink(/proc/PID/ns/net) shows it, from an open descriptor: "net:[4026531840]". */
export function netnsIdOfFd(fd: number): string {
  return `net:[${fstatSync(fd).ino}]`;
}

/** The identity of the namespace the calling thread is in now. */
export function currentNetnsId(): string {
  const fd = openSync(THREAD_NETNS, "r");
  try {
    return netnsIdOfFd(fd);
  } finally {
    closeSync(fd);
  }
}

/** An open namespace file: keeps the namespace reachable for later switches, whatever happens to its path. */
export class NetnsHandle {
  private fdOrClosed: number | undefined;
  /** Where it came from, for messages: a path, or what handed us the descriptor. */
  readonly path: string;
  /** The namespace's identity ("net:[inode]"): two handles on the same namespace have the same one. */
  readonly id: string;

  private constructor(path: string, fd: number) {
    this.path = path;
    this.fdOrClosed = fd;
    this.id = netnsIdOfFd(fd);
  }

  static open(netns: string): NetnsHandle {
    const path = netnsPath(netns);
    let fd: number;
    try {
      fd = openSync(path, "r");
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
    return NetnsHandle.adopt(fd, path);
  }

  /** Takes over an open descriptor (e.g. one another process passed us); closing the handle closes it. */
  static adopt(fd: number, path: string): NetnsHandle {
    try {
      return new NetnsHandle(path, fd);
    } catch (error) {
      closeSync(fd);
      throw new NetnsError(
        "IO",
        path,
        `cannot inspect network namespace ${path}: ${String((error as { code?: unknown }).code)}`,
        { cause: error },
      );
    }
  }

  /** A second handle on the same open namespace, closed independently of this one. */
  duplicate(): NetnsHandle {
    return NetnsHandle.adopt(openSync(`/proc/self/fd/${this.fd}`, "r"), this.path);
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

let poisoned: NamespaceEscapeError | undefined;
/** Without a handler installed, the error is rethrown outside any caller's catch: the process dies of it. */
let fatalHandler: (error: NamespaceEscapeError) => void = (error) => {
  queueMicrotask(() => {
    throw error;
  });
};

/** The entry point's way to end the process when the thread is stuck in a foreign namespace (it must not return). */
export function onNamespaceEscape(handler: (error: NamespaceEscapeError) => void): void {
  fatalHandler = handler;
}

/**
 * Runs `fn` with the calling thread inside the namespace, then switches back, also when `fn` throws. `fn` must be
 * synchronous and must only open things (sockets, files): any other work would also run inside the namespace.
 */
export function withNetns<T>(netns: string | NetnsHandle, fn: () => T): T {
  if (poisoned !== undefined) throw poisoned;
  const target = typeof netns === "string" ? NetnsHandle.open(netns) : netns;
  // /proc/thread-self, not /proc/self: the namespace to come back to is this thread's own.
  const home = openSync(THREAD_NETNS, "r");
  let result: T;
  try {
    setns(target.fd, target.path);
    try {
      result = fn();
    } finally {
      try {
        setns(home, THREAD_NETNS);
      } catch (error) {
        poisoned = new NamespaceEscapeError(target.path, { cause: error });
        fatalHandler(poisoned);
      }
    }
    // A failed return overrides whatever fn did: its result was made in the right place, but nothing after is.
    if (poisoned !== undefined) throw poisoned;
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
