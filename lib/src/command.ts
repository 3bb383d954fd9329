// Running a host tool (nft, iptables-restore) behind a port: argument arrays and stdin only, never a shell string.
import { execFile } from "node:child_process";
import { TrellisError } from "./errors.js";

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CommandRunner {
  /** Runs file with args, feeding input on stdin; resolves with the exit code (never rejects for a non-zero exit). */
  run(file: string, args: readonly string[], input?: string): Promise<CommandResult>;
}

export const COMMAND_TIMEOUT_MS = 10_000;

export const processRunner: CommandRunner = {
  run: (file, args, input) =>
    new Promise((resolve, reject) => {
      const child = execFile(
        file,
        args,
        { timeout: COMMAND_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024, encoding: "utf8" },
        (error, stdout, stderr) => {
          if (error !== null && typeof error.code === "string") {
            // The program could not be started at all (ENOENT, EACCES).
            reject(
              new TrellisError(error.code === "ENOENT" ? "NOT_FOUND" : "IO", `cannot run ${file}: ${error.code}`, {
                cause: error,
              }),
            );
            return;
          }
          resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr });
        },
      );
      // A tool that exits without reading stdin makes the write fail with EPIPE; its exit code tells the story.
      child.stdin?.on("error", () => undefined);
      child.stdin?.end(input ?? "");
    }),
};

/** Runs the command and returns its stdout; a non-zero exit is a COMMAND_FAILED error with its stderr. */
export async function runChecked(
  runner: CommandRunner,
  file: string,
  args: readonly string[],
  input?: string,
): Promise<string> {
  const result = await runner.run(file, args, input);
  if (result.code !== 0)
    throw new TrellisError(
      "COMMAND_FAILED",
      `${file} ${args.join(" ")} failed: ${result.stderr.trim() || `exit ${result.code}`}`,
    );
  return result.stdout;
}
