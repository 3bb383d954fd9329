// Keeps subnet.env equal to the lease: written when the lease is (re-)acquired, and re-checked every
// SUBNET_FILE_CHECK_MS — a file deleted, edited or left stale by a failed write is rewritten at the next check.
// Writes are serialised and always write the newest content, so two quick re-acquisitions can never leave the
// older lease in the file. While the file cannot be written the keeper says why (file and errno) for readiness.
import { isAborted } from "#lib/abort.js";
import type { Clock } from "#lib/clock.js";
import { Emitter } from "#lib/emitter.js";
import { TrellisError } from "#lib/errors.js";
import type { FileStore } from "#lib/files.js";

/** How often the file is compared with the lease (a small read). */
export const SUBNET_FILE_CHECK_MS = 500;

export type SubnetFileState =
  { readonly state: "pending" } | { readonly state: "written" } | { readonly state: "failed"; readonly reason: string };

export type SubnetFileEvent =
  | { readonly type: "written"; readonly path: string; readonly why: "lease" | "missing" | "changed" }
  | { readonly type: "failed"; readonly path: string; readonly reason: string; readonly error: unknown };

/** The file could not be written (read-only, no space, permission): exit 7 at start, not ready while running. */
export class SubnetFileError extends TrellisError {
  constructor(
    readonly path: string,
    readonly errno: string,
    cause: unknown,
  ) {
    super("FILE_UNWRITABLE", `cannot write the subnet file ${path}: ${errno}`, { cause });
  }
}

/** The errno behind a file error (ours wrap Node's), or the message. */
export function errnoOf(error: unknown): string {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === "string" && /^E[A-Z0-9]+$/.test(code)) return code;
  }
  return error instanceof Error ? error.message : String(error);
}

export class SubnetFileKeeper {
  readonly events = new Emitter<SubnetFileEvent>();
  private desired: string | undefined;
  /** Bumped by every set() and by every check that finds the file different: each needs a write. */
  private version = 0;
  private writtenVersion = 0;
  private queue: Promise<void> = Promise.resolve();
  private stateValue: SubnetFileState = { state: "pending" };
  private lastFailure: string | undefined;

  constructor(
    private readonly files: FileStore,
    private readonly clock: Clock,
    readonly path: string,
    private readonly checkMs = SUBNET_FILE_CHECK_MS,
  ) {}

  get state(): SubnetFileState {
    return this.stateValue;
  }

  /** The file must say this from now on. Resolves once it (or newer content) is written; rejects if that write fails. */
  set(content: string): Promise<void> {
    this.desired = content;
    this.version += 1;
    return this.enqueue("lease");
  }

  private enqueue(why: "lease" | "missing" | "changed"): Promise<void> {
    const write = this.queue.then(() => this.writeLatest(why));
    this.queue = write.catch(() => undefined);
    return write;
  }

  /** Writes the newest content unless a write of it (or of newer content) already finished. */
  private async writeLatest(why: "lease" | "missing" | "changed"): Promise<void> {
    const version = this.version;
    const content = this.desired;
    if (content === undefined || version <= this.writtenVersion) return;
    try {
      await this.files.writeAtomic(this.path, content);
    } catch (error) {
      const failure = new SubnetFileError(this.path, errnoOf(error), error);
      this.fail(failure.message, failure);
      throw failure;
    }
    this.writtenVersion = Math.max(this.writtenVersion, version);
    this.lastFailure = undefined;
    if (version === this.version) this.stateValue = { state: "written" };
    this.events.emit({ type: "written", path: this.path, why });
  }

  private fail(message: string, error: unknown): void {
    const reason = `${message}: CNI plugins would read a stale or missing lease; retrying every ${this.checkMs} ms`;
    this.stateValue = { state: "failed", reason };
    if (this.lastFailure !== message) this.events.emit({ type: "failed", path: this.path, reason: message, error });
    this.lastFailure = message;
  }

  /** Compares the file with the lease once; rewrites it when it differs or is gone. */
  async check(): Promise<void> {
    const content = this.desired;
    const version = this.version;
    if (content === undefined) return;
    let actual: string | undefined;
    try {
      actual = await this.files.read(this.path);
    } catch (error) {
      this.fail(`cannot read the subnet file ${this.path}: ${errnoOf(error)}`, error);
      return;
    }
    if (actual === content) {
      // Equal to the newest lease is all that matters, whoever wrote it (e.g. fixed by hand after a failed write).
      if (this.version === version) {
        this.writtenVersion = Math.max(this.writtenVersion, version);
        this.stateValue = { state: "written" };
        this.lastFailure = undefined;
      }
      return;
    }
    this.version += 1;
    await this.enqueue(actual === undefined ? "missing" : "changed").catch(() => undefined);
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.clock.sleep(this.checkMs, signal).catch(() => undefined);
      if (!isAborted(signal)) await this.check();
    }
  }
}
