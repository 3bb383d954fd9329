// What every command gets: the validated invocation and config, and the ports.
import type { PluginConfig } from "../config.js";
import type { PluginDeps } from "../deps.js";
import type { Invocation } from "../env.js";

export interface CommandContext {
  invocation: Invocation;
  config: PluginConfig;
  deps: PluginDeps;
}

/** A command's answer: the JSON to print (empty for DEL, CHECK, GC and STATUS). */
export type CommandOutput = string;
