// The plugin as a function: env + stdin → stdout + exit code, with the side effects injected. main.ts calls it with
// the real adapters; the tests call it in-process with fakes. Nothing escapes as an exception: every failure is
// the spec's error JSON, answered in the config's version when that version is one we speak.
import { add } from "./commands/add.js";
import { check } from "./commands/check.js";
import type { CommandContext } from "./commands/context.js";
import { del } from "./commands/del.js";
import { gc } from "./commands/gc.js";
import { status } from "./commands/status.js";
import { errorJson, toCniError } from "./cni-error.js";
import { parseConfig, parseConfigJson } from "./config.js";
import type { PluginDeps } from "./deps.js";
import { parseCommand, parseInvocation } from "./env.js";
import {
  isSupportedVersion,
  LATEST_VERSION,
  requireCommandInVersion,
  versionAnswer,
  type Command,
} from "./versions.js";

export interface PluginRun {
  env: Readonly<Record<string, string | undefined>>;
  stdin: string;
  deps: PluginDeps;
}

export interface PluginOutcome {
  stdout: string;
  exitCode: number;
}

const HANDLERS: Record<Exclude<Command, "VERSION">, (context: CommandContext) => Promise<string>> = {
  ADD: add,
  DEL: del,
  CHECK: check,
  GC: gc,
  STATUS: status,
};

/** stdin's JSON, or the error to report for it: read first, so that every later error answers in its version. */
function readConfig(stdin: string): { raw: Record<string, unknown> } | { error: unknown } {
  try {
    return { raw: parseConfigJson(stdin) };
  } catch (error) {
    return { error };
  }
}

export async function runPlugin({ env, stdin, deps }: PluginRun): Promise<PluginOutcome> {
  let version: string = LATEST_VERSION;
  try {
    const read = readConfig(stdin);
    if ("raw" in read && isSupportedVersion(read.raw.cniVersion)) version = read.raw.cniVersion;
    const command = parseCommand(env);
    if (command === "VERSION") return { stdout: versionAnswer(), exitCode: 0 };
    const invocation = parseInvocation(env);
    if ("error" in read) throw read.error;
    const config = parseConfig(read.raw);
    requireCommandInVersion(command, config.cniVersion);
    const stdout = await HANDLERS[command]({ invocation, config, deps });
    return { stdout, exitCode: 0 };
  } catch (error) {
    return { stdout: errorJson(toCniError(error), version), exitCode: 1 };
  }
}
