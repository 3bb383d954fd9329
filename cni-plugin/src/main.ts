// The entry point the runtime executes (through bin/trellis): env + stdin → runPlugin → stdout + exit code. The only
// place that reads the process's environment and stdin, writes stdout and sets the exit code.
import { readSync, writeSync } from "node:fs";
import { MAX_CNI_STDIN_BYTES } from "#lib/names.js";
import { onNamespaceEscape } from "#lib/netlink/netns.js";
import { CniCode, CniError, errorJson } from "./cni-error.js";
import { runPlugin } from "./plugin.js";
import { realDeps } from "./real-deps.js";
import { isSupportedVersion, LATEST_VERSION } from "./versions.js";

/** All of stdin, or undefined when it is larger than the plugin accepts (it is not read further). */
function readStdin(): string | undefined {
  const chunks: Buffer[] = [];
  let total = 0;
  const buffer = Buffer.alloc(64 * 1024);
  for (;;) {
    let n: number;
    try {
      n = readSync(0, buffer, 0, buffer.length, null);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === "EAGAIN") {
        // A non-blocking pipe with nothing in it yet: wait 1 ms instead of spinning.
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
        continue;
      }
      if (code === "EOF" || code === "EBADF" || code === "EINVAL") break; // no stdin at all
      throw error;
    }
    if (n === 0) break;
    total += n;
    if (total > MAX_CNI_STDIN_BYTES) return undefined;
    chunks.push(Buffer.from(buffer.subarray(0, n)));
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** The config's cniVersion when one we speak can be read from stdin, else the latest. */
function answerVersion(stdin: string | undefined): string {
  try {
    const version = (JSON.parse(stdin ?? "") as { cniVersion?: unknown }).cniVersion;
    return isSupportedVersion(version) ? version : LATEST_VERSION;
  } catch {
    return LATEST_VERSION;
  }
}

async function main(): Promise<void> {
  let stdout: string;
  let exitCode: number;
  let stdin: string | undefined;
  // Stuck in the pod's namespace: answer with the spec's error object and stop before anything else runs here.
  onNamespaceEscape((error) => {
    writeAll(`${errorJson(new CniError(CniCode.INTERNAL, error.message), answerVersion(stdin))}\n`);
    process.exit(1);
  });
  try {
    stdin = readStdin();
    if (stdin === undefined) {
      const error = new CniError(
        CniCode.DECODE_FAILURE,
        `the network config on stdin is larger than ${MAX_CNI_STDIN_BYTES} bytes`,
      );
      ({ stdout, exitCode } = { stdout: errorJson(error, LATEST_VERSION), exitCode: 1 });
    } else {
      ({ stdout, exitCode } = await runPlugin({ env: process.env, stdin, deps: realDeps }));
    }
  } catch (error) {
    // runPlugin never throws; this guards reading stdin. Never a stack trace: the runtime parses stdout.
    const message = error instanceof Error ? error.message : String(error);
    stdout = errorJson(new CniError(CniCode.IO_FAILURE, `cannot read stdin: ${message}`), LATEST_VERSION);
    exitCode = 1;
  }
  process.exitCode = exitCode;
  if (stdout !== "") writeAll(`${stdout}\n`);
  if (process.env.TRELLIS_CNI_WRITE_CODE_CACHE !== undefined) await warmUp();
}

/** Straight to fd 1: creating process.stdout costs ~3 ms (stream machinery) for one small write. */
function writeAll(text: string): void {
  const bytes = Buffer.from(text, "utf8");
  let offset = 0;
  while (offset < bytes.length) {
    try {
      offset += writeSync(1, bytes, offset);
    } catch (error) {
      if ((error as { code?: unknown }).code !== "EAGAIN") throw error;
    }
  }
}

/**
 * The build runs VERSION once with TRELLIS_CNI_WRITE_CODE_CACHE set (launcher.cts) so that the code cache also
 * covers the netlink adapter: load it and list this namespace's links (read-only, needs no privileges).
 */
async function warmUp(): Promise<void> {
  const { openKernel } = await import("#lib/netlink/rtnetlink-kernel.js");
  const kernel = openKernel();
  try {
    await kernel.listLinks();
  } finally {
    kernel.close();
  }
}

void main();
