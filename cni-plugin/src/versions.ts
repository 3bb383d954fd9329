// The spec versions we speak and which commands each one allows (pure).
import { CniCode, CniError } from "./cni-error.js";

export const SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const LATEST_VERSION: CniVersion = "1.1.0";

export type Command = "ADD" | "DEL" | "CHECK" | "VERSION" | "GC" | "STATUS";
export const COMMANDS: readonly Command[] = ["ADD", "DEL", "CHECK", "VERSION", "GC", "STATUS"];

export function isSupportedVersion(value: unknown): value is CniVersion {
  return typeof value === "string" && (SUPPORTED_VERSIONS as readonly string[]).includes(value);
}

/** Versions compare in the order of SUPPORTED_VERSIONS. */
export function atLeast(version: CniVersion, minimum: CniVersion): boolean {
  return SUPPORTED_VERSIONS.indexOf(version) >= SUPPORTED_VERSIONS.indexOf(minimum);
}

const MINIMUM: Record<Command, CniVersion> = {
  ADD: "0.3.0",
  DEL: "0.3.0",
  VERSION: "0.3.0",
  CHECK: "0.4.0",
  GC: "1.1.0",
  STATUS: "1.1.0",
};

/** CHECK exists from 0.4.0, GC and STATUS from 1.1.0: a config of an older version cannot ask for them (code 1). */
export function requireCommandInVersion(command: Command, version: CniVersion): void {
  const minimum = MINIMUM[command];
  if (!atLeast(version, minimum)) {
    throw new CniError(
      CniCode.INCOMPATIBLE_VERSION,
      `${command} needs cniVersion ${minimum} or later; the config has ${version}`,
    );
  }
}

export function versionAnswer(): string {
  return JSON.stringify({ cniVersion: LATEST_VERSION, supportedVersions: SUPPORTED_VERSIONS });
}
