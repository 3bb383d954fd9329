// The version, read once from the package.json above this file (dist/agent/src/cli, or the bundle in dist/agent).
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function readVersion(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: unknown; version?: unknown };
      if (pkg.name === "trellis" && typeof pkg.version === "string") return pkg.version;
    } catch {
      // not here: one level up
    }
  }
  return "unknown";
}

export const VERSION = readVersion();
