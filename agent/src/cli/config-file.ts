// The optional config file: JSON whose keys are the command's long flag names ("etcd-endpoints": "…").
// Precedence: flag > TRELLIS_* variable > config file > default. A key no command takes is rejected, naming the key
// and the keys allowed; another command's key is skipped. `run --print-config` shows every effective value and where it came from, secrets masked.
import { readFileSync } from "node:fs";
import type { Command, Option } from "commander";
import { InvalidArgumentError } from "#lib/errors.js";
import { DEFAULTS } from "../config/agent-options.js";
import { DNS_DEFAULTS } from "../config/dns-options.js";

/** Options whose values are never shown. */
const SECRETS = new Set(["etcd-password"]);
/** Options that are not settings. */
const NOT_SETTINGS = new Set(["config", "print-config", "help"]);

function longName(option: Option): string {
  return (option.long ?? "").replace(/^--/, "");
}

function settings(command: Command): Option[] {
  return command.options.filter((option) => option.long !== undefined && !NOT_SETTINGS.has(longName(option)));
}

function readJson(path: string, explicit: boolean): Record<string, unknown> | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if (!explicit && (error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new InvalidArgumentError(
      "--config",
      path,
      `must be a readable file (${(error as NodeJS.ErrnoException).code ?? "unreadable"})`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InvalidArgumentError("--config", path, `must contain JSON (${(error as Error).message})`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError(
      "--config",
      path,
      'must contain a JSON object such as {"etcd-endpoints": "https://10.0.0.1:2379"}',
    );
  }
  return value as Record<string, unknown>;
}

function withDescendants(command: Command): Command[] {
  return [command, ...command.commands.flatMap(withDescendants)];
}

/**
 * Every key some command reading the same file takes: one file serves `run`, `status`, `service …` alike, so a
 * command skips the others' keys (`status` has no use for `ip-masq`) and only a key no command takes is an error.
 */
function fileKeys(command: Command): Set<string> {
  if (command.name() === "dns") return new Set(settings(command).map(longName));
  let root = command;
  while (root.parent !== null) root = root.parent;
  const sharing = withDescendants(root).filter(
    (c) => c.name() !== "dns" && c.options.some((o) => o.long === "--config"),
  );
  return new Set(sharing.flatMap((c) => settings(c).map(longName)));
}

/** Fills every option still at its default from the config file (the command's preAction hook). */
export function applyConfigFile(command: Command): void {
  const opts = command.opts<{ config?: string }>();
  if (!command.options.some((o) => o.long === "--config")) return;
  const explicit = opts.config !== undefined;
  // The DNS server has a file of its own: the agent's holds keys `dns` does not have.
  const path = opts.config ?? (command.name() === "dns" ? DNS_DEFAULTS.configFile : DEFAULTS.configFile);
  const values = readJson(path, explicit);
  if (values === undefined) return;
  const known = new Map(settings(command).map((option) => [longName(option), option]));
  const shared = fileKeys(command);
  for (const [key, value] of Object.entries(values)) {
    const option = known.get(key);
    if (option === undefined && shared.has(key)) continue; // another command's setting
    if (option === undefined) {
      throw new InvalidArgumentError(
        `${path}: key "${key}"`,
        value,
        `is not an option of \`${command.name()}\`; allowed: ${[...known.keys()].join(", ")}`,
      );
    }
    if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
      throw new InvalidArgumentError(`${path}: key "${key}"`, value, "must be a string, number or boolean");
    }
    const attribute = option.attributeName();
    const source = command.getOptionValueSource(attribute);
    if (source !== undefined && source !== "default") continue; // a flag or variable wins
    const text = String(value);
    if (option.argChoices !== undefined && !option.argChoices.includes(text)) {
      throw new InvalidArgumentError(`${path}: key "${key}"`, value, `must be one of ${option.argChoices.join(", ")}`);
    }
    // commander types parseArg generically; ours (parseBool) return plain values.
    const parse = option.parseArg as ((value: string, previous: unknown) => unknown) | undefined;
    const parsed = parse === undefined ? (option.isBoolean() ? value : text) : parse(text, undefined);
    command.setOptionValueWithSource(attribute, parsed, "config");
  }
}

/** The effective configuration as JSON: {"etcd-endpoints": {"value": …, "source": "env"}, …}. */
export function printConfig(command: Command): string {
  const out: Record<string, { value: unknown; source: string }> = {};
  for (const option of settings(command)) {
    const name = longName(option);
    const attribute = option.attributeName();
    const value: unknown = command.getOptionValue(attribute);
    const source = command.getOptionValueSource(attribute) ?? "unset";
    out[name] = {
      value: SECRETS.has(name) && value !== undefined ? "********" : (value ?? null),
      source: source === "cli" ? "flag" : source,
    };
  }
  return `${JSON.stringify(out, null, 2)}\n`;
}
