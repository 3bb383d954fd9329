// trellis-agent entry point: argv + env → a subcommand. The only place (with the command actions) that writes to
// the console and sets the exit code. Errors become one clear line on stderr, never a stack trace.
import { Command, CommanderError } from "commander";
import { errorMessage, TrellisError } from "#lib/errors.js";
import { registerCleanup } from "./commands/cleanup.js";
import { registerDns } from "./commands/dns.js";
import { registerNetwork } from "./commands/network.js";
import { registerLeaseAdmin } from "./commands/reserve.js";
import { registerRun } from "./commands/run.js";
import { registerApply, registerService } from "./commands/service.js";
import { registerStatus } from "./commands/status.js";
import { registerVersion } from "./commands/version.js";
import { applyConfigFile } from "./config-file.js";
import { EXIT, exitCodeFor } from "./exit-codes.js";
import { ENV_PREFIX } from "../config/agent-options.js";

function buildProgram(): Command {
  const program = new Command("trellis-agent")
    .description("trellis node agent: subnet leases in etcd, VXLAN/host-gw dataplane, CNI subnet file")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) })
    .addHelpText(
      "after",
      `\nEvery flag can also be set by an environment variable: ${ENV_PREFIX}<FLAG_NAME>, e.g. ${ENV_PREFIX}ETCD_ENDPOINTS.\nDocumentation: docs/operations.md`,
    );
  // The config file fills what neither a flag nor a variable set, before any command runs.
  program.hook("preAction", (_program, action) => {
    applyConfigFile(action);
  });
  registerRun(program);
  registerDns(program);
  registerStatus(program);
  registerNetwork(program);
  registerLeaseAdmin(program);
  registerService(program);
  registerApply(program);
  registerCleanup(program);
  registerVersion(program);
  // Subcommands inherit exitOverride and output settings only when set on each of them, at every depth.
  const configure = (command: Command): void => {
    for (const sub of command.commands) {
      sub.exitOverride().configureOutput({ writeErr: (text) => process.stderr.write(text) });
      configure(sub);
    }
  };
  configure(program);
  return program;
}

async function main(): Promise<number> {
  try {
    await buildProgram().parseAsync(process.argv);
    return EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; usage errors were already printed by commander.
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const code = error instanceof TrellisError ? error.code : undefined;
    process.stderr.write(`trellis-agent: ${errorMessage(error)}\n`);
    if (process.env.TRELLIS_DEBUG === "1" && error instanceof Error) process.stderr.write(`${error.stack ?? ""}\n`);
    return exitCodeFor(code);
  }
}

// `trellis-agent status | head` closes our stdout early: that is not an error worth a stack trace.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
});

/**
 * The build runs `version` once with TRELLIS_WRITE_CODE_CACHE set (scripts/build/bundle.ts): loading the modules
 * that commands import lazily makes the code cache cover their start-up code too (etcd3 parses its protos at load).
 */
async function warmUp(): Promise<void> {
  await Promise.all([
    import("./daemon-main.js"),
    import("../etcd/client.js"),
    import("../lease/etcd-registry.js"),
    import("../node/kernel-host-network.js"),
    import("../dataplane/cleanup.js"),
  ]);
}

// No top-level await: the build bundles this file as CommonJS.
void main().then(async (code) => {
  process.exitCode = code;
  if (process.env.TRELLIS_WRITE_CODE_CACHE !== undefined) await warmUp();
});
