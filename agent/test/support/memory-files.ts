// The FileStore port in memory: files in a Map; a write can be held until the test releases it, or fail with an
// errno as a read-only file system would.
import { TrellisError } from "#lib/errors.js";
import type { FileStore } from "#lib/files.js";

/** Files in memory; a write can be held until the test releases it, or fail with an errno. */
export class MemoryFiles implements FileStore {
  readonly files = new Map<string, string>();
  writes = 0;
  inFlight = 0;
  maxInFlight = 0;
  hold: Promise<void> | undefined;
  failWith: string | undefined;

  read(path: string): Promise<string | undefined> {
    return Promise.resolve(this.files.get(path));
  }

  async writeAtomic(path: string, content: string): Promise<void> {
    this.writes += 1;
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      const hold = this.hold;
      this.hold = undefined;
      if (hold !== undefined) await hold;
      if (this.failWith !== undefined) {
        const cause = Object.assign(new Error(`${this.failWith}: read-only file system`), { code: this.failWith });
        throw new TrellisError("IO", `cannot write ${path}: ${this.failWith}`, { cause });
      }
      this.files.set(path, content);
    } finally {
      this.inFlight -= 1;
    }
  }

  remove(path: string): Promise<void> {
    this.files.delete(path);
    return Promise.resolve();
  }
}
