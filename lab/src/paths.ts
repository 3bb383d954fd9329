// Paths of the repository and its executables, from dist/lab/src back to the repo root.
import { fileURLToPath } from "node:url";
import { resolve } from "node:path";

export const REPO_ROOT = resolve(fileURLToPath(import.meta.url), "../../../..");
export const AGENT_BIN = resolve(REPO_ROOT, "agent/bin/agent");
export const CNI_BIN = resolve(REPO_ROOT, "cni-plugin/bin/trellis");
