// `version`: this build's version and the runtime it runs on.
import type { Command } from "commander";
import { VERSION } from "../version.js";

export function registerVersion(program: Command): void {
  program
    .command("version")
    .description("print the version")
    .option("-o, --output <format>", "text or json", "text")
    .addHelpText("after", "\nExamples:\n  trellis-agent version\n  trellis-agent version -o json")
    .action((flags: { output: string }) => {
      const info = { version: VERSION, node: process.versions.node, platform: `${process.platform}/${process.arch}` };
      process.stdout.write(
        flags.output === "json"
          ? `${JSON.stringify(info)}\n`
          : `trellis-agent ${info.version} (node ${info.node}, ${info.platform})\n`,
      );
    });
}
