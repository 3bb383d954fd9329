// An exclusive flock(2) on a lock file, as the reference host-local holds around every allocate/release. Chosen over
// O_EXCL lock files because the kernel drops it when the holder dies, so a plugin killed mid-ADD never leaves a
// stale lock to recover (docs/decisions/0006). Node has no flock, so it goes through syscall-napi's addon — the
// one the netlink adapter already loads for setns — with LOCK_NB and a short jittered poll, bounded by a timeout.
import { closeSync, openSync } from "node:fs";
import { errnoByMessage } from "#lib/netlink/errors.js";
import { syscallNumber, syscallSync } from "#lib/syscall.js";
import { CniCode, CniError } from "../cni-error.js";

const LOCK_EX = 2n;
const LOCK_NB = 4n;

/** true: locked; false: someone else holds it. */
function tryFlock(fd: number, path: string): boolean {
  const nr = syscallNumber("flock");
  if (nr === undefined) throw new CniError(CniCode.IO_FAILURE, `flock is not available on ${process.arch}`);
  try {
    syscallSync(nr, BigInt(fd), LOCK_EX | LOCK_NB);
    return true;
  } catch (error) {
    const errno = error instanceof Error ? errnoByMessage(error.message) : undefined;
    if (errno === "EAGAIN" || errno === "EWOULDBLOCK" || errno === "EINTR") return false;
    throw new CniError(CniCode.IO_FAILURE, `cannot lock ${path}: ${errno ?? String(error)}`, "", { cause: error });
  }
}

export interface LockOptions {
  timeoutMs: number;
  sleep: (ms: number) => Promise<void>;
  now: () => number;
}

/**
 * Holders in this process, by lock path. flock conflicts between descriptors of one process too, so without this
 * the agent's concurrent requests would poll each other; in line here, each takes over the moment the previous one
 * is done, and only other processes (standalone plugins) are polled for.
 */
const queues = new Map<string, Promise<unknown>>();

/** Holds the lock while `fn` runs; closing the descriptor releases it (and so does the process dying). */
export async function withFlock<T>(path: string, options: LockOptions, fn: () => Promise<T>): Promise<T> {
  const previous = queues.get(path) ?? Promise.resolve();
  const mine = previous.catch(() => undefined).then(() => withFileLock(path, options, fn));
  const tail = mine.catch(() => undefined);
  queues.set(path, tail);
  try {
    return await mine;
  } finally {
    if (queues.get(path) === tail) queues.delete(path);
  }
}

async function withFileLock<T>(path: string, options: LockOptions, fn: () => Promise<T>): Promise<T> {
  let fd: number;
  try {
    fd = openSync(path, "a", 0o600);
  } catch (error) {
    throw new CniError(
      CniCode.IO_FAILURE,
      `cannot open lock file ${path}: ${(error as { code?: string }).code ?? String(error)}`,
      "",
      { cause: error },
    );
  }
  try {
    const deadline = options.now() + options.timeoutMs;
    while (!tryFlock(fd, path)) {
      if (options.now() >= deadline) {
        throw new CniError(
          CniCode.TRY_AGAIN_LATER,
          `the IPAM store is busy: ${path} stayed locked for ${options.timeoutMs} ms`,
        );
      }
      await options.sleep(1 + Math.random() * 4);
    }
    return await fn();
  } finally {
    closeSync(fd);
  }
}
