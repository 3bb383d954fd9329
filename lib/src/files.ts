// Files behind a port. Every write is atomic (temp file in the same directory, fsync, rename, fsync the directory)
// so a crash leaves either the old or the new content, never a torn file. Hand-written rather than
// write-file-atomic: that package costs ~12 ms to import on the CNI plugin's per-pod path and skips the
// directory fsync (docs/decisions/0003).
import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { TrellisError } from "./errors.js";

export interface FileStore {
  /** The file's text, or undefined when it does not exist. */
  read(path: string): Promise<string | undefined>;
  /** Creates parent directories as needed and replaces the file atomically. */
  writeAtomic(path: string, content: string, mode?: number): Promise<void>;
  /** Removes the file; absent is fine. */
  remove(path: string): Promise<void>;
}

function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}

function ioError(action: string, path: string, error: unknown): TrellisError {
  const code = error instanceof Error ? ((error as NodeJS.ErrnoException).code ?? error.message) : String(error);
  if (code === "EACCES" || code === "EPERM") {
    return new TrellisError("PERMISSION_DENIED", `cannot ${action} ${path}: permission denied (run as root)`, {
      cause: error,
    });
  }
  return new TrellisError("IO", `cannot ${action} ${path}: ${code}`, { cause: error });
}

export async function readTextFile(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if (isErrno(error, "ENOENT")) return undefined;
    throw ioError("read", path, error);
  }
}

export async function writeFileAtomic(path: string, content: string, mode = 0o644): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    await mkdir(dir, { recursive: true });
    const handle = await open(temp, "wx", mode);
    try {
      await handle.writeFile(content, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
    const dirHandle = await open(dir, "r");
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
  } catch (error) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw ioError("write", path, error);
  }
}

export const nodeFileStore: FileStore = {
  read: readTextFile,
  writeAtomic: writeFileAtomic,
  remove: async (path) => {
    try {
      await rm(path, { force: true });
    } catch (error) {
      throw ioError("remove", path, error);
    }
  },
};
