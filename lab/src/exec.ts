// Running host tools for the lab, tests and benchmarks: always argument arrays, never shell strings.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { closeSync, openSync, readFileSync } from "node:fs";

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a program to completion; rejects with its stderr when it exits non-zero. */
export function run(
  file: string,
  args: readonly string[],
  options: { input?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { timeout: options.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024, encoding: "utf8" },
      (error, stdout, stderr) => {
        if (error) {
          reject(new Error(`${file} ${args.join(" ")} failed: ${stderr.trim() || error.message}`, { cause: error }));
        } else {
          resolve({ stdout, stderr });
        }
      },
    );
    // A child that exits without reading its stdin makes our write fail with EPIPE: that is not our error.
    child.stdin?.on("error", () => undefined);
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Runs a program and returns its exit code and output without throwing. */
export function runStatus(
  file: string,
  args: readonly string[],
  options: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      {
        timeout: options.timeoutMs ?? 30_000,
        maxBuffer: 64 * 1024 * 1024,
        encoding: "utf8",
        env: options.env ?? process.env,
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
    child.stdin?.on("error", () => undefined);
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

/** What the lab and tests need of a long-running process, attached (piped) or detached (logging to a file). */
export interface RunningProcess {
  readonly pid: number | undefined;
  readonly running: boolean;
  readonly recentOutput: string;
  stop(graceMs?: number, signal?: NodeJS.Signals): Promise<void>;
}

/** A detached process known by PID; its output is in logFile. */
export class DetachedProcess implements RunningProcess {
  constructor(
    readonly pid: number,
    readonly logFile: string,
    private readonly expect: RegExp,
  ) {}

  get running(): boolean {
    return pidAlive(this.pid) && this.expect.test(commandLine(this.pid));
  }

  get recentOutput(): string {
    try {
      return readFileSync(this.logFile, "utf8").slice(-64_000);
    } catch {
      return "";
    }
  }

  async stop(graceMs = 5000, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    await stopPid(this.pid, this.expect, graceMs, signal);
  }
}

/** A long-running child process we started and must stop by its own PID. */
export class ManagedProcess implements RunningProcess {
  readonly exited: Promise<number | null>;
  private output = "";

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    this.exited = once(child, "exit").then(([code]) => code as number | null);
    const keep = (chunk: Buffer): void => {
      this.output = (this.output + chunk.toString("utf8")).slice(-64_000);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The last 64 kB of combined stdout/stderr, for failure messages. */
  get recentOutput(): string {
    return this.output;
  }

  /** SIGTERM, then SIGKILL after the grace period; resolves once the process is gone. */
  async stop(graceMs = 5000, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    if (!this.running) return;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    try {
      await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

export function start(name: string, file: string, args: readonly string[], env?: NodeJS.ProcessEnv): ManagedProcess {
  const child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"], env: env ?? process.env });
  return new ManagedProcess(name, child);
}

/**
 * Starts a process that outlives us (the lab's etcd and agents): its own session, output appended to logFile.
 * Returns its PID; stop it with stopPid().
 */
export function startDetached(file: string, args: readonly string[], logFile: string, env?: NodeJS.ProcessEnv): number {
  const fd = openSync(logFile, "a");
  try {
    const child = spawn(file, args, { detached: true, stdio: ["ignore", fd, fd], env: env ?? process.env });
    child.unref();
    if (child.pid === undefined) throw new Error(`could not start ${file}`);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The command line of a live process ("" when gone): lets us check a recorded PID is still ours before killing it. */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").trim();
  } catch {
    return "";
  }
}

/** SIGTERM, then SIGKILL after graceMs; resolves when the PID is gone. Only if its command line matches `expect`. */
export async function stopPid(
  pid: number,
  expect: RegExp,
  graceMs = 5000,
  signal: NodeJS.Signals = "SIGTERM",
): Promise<boolean> {
  if (!expect.test(commandLine(pid))) return false;
  try {
    process.kill(pid, signal);
  } catch {
    return false;
  }
  const deadline = Date.now() + graceMs;
  while (pidAlive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
  if (pidAlive(pid)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone in between
    }
    while (pidAlive(pid)) await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}
