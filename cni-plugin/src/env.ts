// The CNI_* environment → a typed invocation (pure). Names end up in paths and link names, so they are checked as
// strictly as the reference library does: nothing here can escape the data dir or name a foreign device.
import { isInterfaceName } from "#lib/names.js";
import { CniCode, CniError, invalidEnv } from "./cni-error.js";
import { COMMANDS, type Command } from "./versions.js";

export interface Invocation {
  command: Command;
  containerId?: string;
  netns?: string;
  ifname?: string;
  args: ReadonlyMap<string, string>;
  path: readonly string[];
}

/** The pod identity the IPAM store and the host veth name are derived from. */
export interface Attachment {
  containerId: string;
  ifname: string;
}

const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const MAX_CONTAINER_ID = 256;
/** What we read (IP, MAC: requested.ts) or know runtimes to send; docs/operations.md lists them. */
const KNOWN_ARGS = new Set([
  "IgnoreUnknown",
  "IP",
  "MAC",
  "K8S_POD_NAMESPACE",
  "K8S_POD_NAME",
  "K8S_POD_INFRA_CONTAINER_ID",
  "K8S_POD_UID",
]);

export function isValidContainerId(id: string): boolean {
  return id.length <= MAX_CONTAINER_ID && CONTAINER_ID.test(id);
}

export function parseCommand(env: Readonly<Record<string, string | undefined>>): Command {
  const command = env.CNI_COMMAND;
  if (command === undefined || !(COMMANDS as readonly string[]).includes(command)) {
    throw invalidEnv("CNI_COMMAND", command, `one of ${COMMANDS.join(", ")}`);
  }
  return command as Command;
}

/** Validates what `command` needs; every missing variable is named at once. */
export function parseInvocation(env: Readonly<Record<string, string | undefined>>): Invocation {
  const command = parseCommand(env);
  const needed: Record<Command, readonly string[]> = {
    ADD: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"],
    CHECK: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"],
    DEL: ["CNI_CONTAINERID", "CNI_IFNAME"],
    GC: [],
    STATUS: [],
    VERSION: [],
  };
  const missing = needed[command].filter((name) => env[name] === undefined || env[name] === "");
  if (missing.length > 0) {
    throw new CniError(CniCode.INVALID_ENV, `${command} needs ${missing.join(", ")}: missing or empty`);
  }
  const invocation: Invocation = {
    command,
    args: parseArgs(env.CNI_ARGS),
    path: (env.CNI_PATH ?? "").split(":").filter((p) => p !== ""),
  };
  const containerId = env.CNI_CONTAINERID;
  if (containerId !== undefined && containerId !== "") {
    if (!isValidContainerId(containerId)) {
      throw invalidEnv(
        "CNI_CONTAINERID",
        containerId,
        `letters, digits, "_", "." and "-", starting with a letter or digit, at most ${MAX_CONTAINER_ID} characters`,
      );
    }
    invocation.containerId = containerId;
  }
  const ifname = env.CNI_IFNAME;
  if (ifname !== undefined && ifname !== "") {
    if (!isInterfaceName(ifname))
      throw invalidEnv(
        "CNI_IFNAME",
        ifname,
        'an interface name of 1-15 bytes, not "." or "..", without "/", ":" or whitespace',
      );
    invocation.ifname = ifname;
  }
  const netns = env.CNI_NETNS;
  if (netns !== undefined && netns !== "") {
    if (!netns.startsWith("/") || netns.length > 4096 || netns.includes("\0"))
      throw invalidEnv("CNI_NETNS", netns, "an absolute path such as /run/netns/<name>");
    invocation.netns = netns;
  }
  return invocation;
}

/** CNI_ARGS "K=V;K2=V2"; unknown keys are refused unless IgnoreUnknown is set, as the reference library does. */
export function parseArgs(text: string | undefined): Map<string, string> {
  const args = new Map<string, string>();
  if (text === undefined || text === "") return args;
  for (const pair of text.split(";")) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw invalidEnv("CNI_ARGS", text, 'pairs "KEY=VALUE" separated by ";"');
    args.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  const ignore = (args.get("IgnoreUnknown") ?? "").toLowerCase();
  if (ignore !== "1" && ignore !== "true") {
    const unknown = [...args.keys()].find((key) => !KNOWN_ARGS.has(key));
    if (unknown !== undefined) {
      throw new CniError(
        CniCode.UNSUPPORTED_FIELD,
        `CNI_ARGS key ${JSON.stringify(unknown)} is not supported (set IgnoreUnknown=1 to ignore unknown keys)`,
        unknown,
      );
    }
  }
  return args;
}

export function attachmentOf(invocation: Invocation): Attachment {
  if (invocation.containerId === undefined || invocation.ifname === undefined) {
    throw new CniError(CniCode.INVALID_ENV, `${invocation.command} needs CNI_CONTAINERID and CNI_IFNAME`);
  }
  return { containerId: invocation.containerId, ifname: invocation.ifname };
}
