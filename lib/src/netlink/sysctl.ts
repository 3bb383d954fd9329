// /proc/sys/net/* resolves to the namespace of the thread that *opens* the file, so the file is opened while
// switched into the namespace; reading and writing the open descriptor happen after switching back.
import { closeSync, openSync, readSync, writeSync } from "node:fs";
import { InvalidArgumentError, TrellisError } from "../errors.js";
import { withNetns, type NetnsHandle } from "./netns.js";

/** "net.ipv4.conf.flannel/1.forwarding" → /proc/sys/net/ipv4/conf/flannel.1/forwarding (sysctl(8) notation). */
export function sysctlPath(name: string): string {
  const parts = name.split(".");
  if (parts.some((part) => part === "" || part === ".." || part.startsWith("/")) || parts.length < 2) {
    throw new InvalidArgumentError("sysctl name", name, 'a dotted sysctl name such as "net.ipv4.ip_forward"');
  }
  return `/proc/sys/${parts.map((part) => part.replaceAll("/", ".")).join("/")}`;
}

function open(name: string, flags: "r" | "w", netns: NetnsHandle | undefined): number {
  const path = sysctlPath(name);
  try {
    return netns === undefined ? openSync(path, flags) : withNetns(netns, () => openSync(path, flags));
  } catch (error) {
    throw translateFsError(error, name, flags === "r" ? "reading" : "writing");
  }
}

export function readSysctl(name: string, netns: NetnsHandle | undefined): string {
  const fd = open(name, "r", netns);
  try {
    const buffer = Buffer.alloc(4096);
    const length = readSync(fd, buffer, 0, buffer.length, null);
    return buffer.subarray(0, length).toString("utf8").trim();
  } catch (error) {
    throw translateFsError(error, name, "reading");
  } finally {
    closeSync(fd);
  }
}

export function writeSysctl(name: string, value: string, netns: NetnsHandle | undefined): void {
  const fd = open(name, "w", netns);
  try {
    writeSync(fd, `${value}\n`);
  } catch (error) {
    throw translateFsError(error, name, `writing ${JSON.stringify(value)} to`);
  } finally {
    closeSync(fd);
  }
}

function translateFsError(error: unknown, name: string, doing: string): TrellisError {
  if (error instanceof TrellisError) return error;
  const code = (error as { code?: unknown }).code;
  if (code === "ENOENT") return new TrellisError("NOT_FOUND", `sysctl ${name} does not exist`, { cause: error });
  if (code === "EACCES" || code === "EPERM") {
    return new TrellisError("PERMISSION_DENIED", `${doing} sysctl ${name} needs root`, { cause: error });
  }
  if (code === "EINVAL")
    return new TrellisError("INVALID_ARGUMENT", `${doing} sysctl ${name} failed: invalid value`, { cause: error });
  return new TrellisError("IO", `${doing} sysctl ${name} failed: ${String(code)}`, { cause: error });
}
