// The pod records ADD leaves for the node's agent (lib/src/pod-record.ts): one file per attachment in the record
// directory, replaced atomically (temp + rename; no fsync: it lives in /run and dies with the pods at a reboot).
// A port, so that the in-process tests keep them in memory; realDeps uses the directory.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { podRecordFile } from "#lib/pod-record.js";
import { CniCode, CniError } from "./cni-error.js";
import type { Attachment } from "./env.js";

/** One network's records in the directory. */
export interface PodRecordStore {
  write(attachment: Attachment, text: string): void;
  /** Absent is fine. */
  remove(attachment: Attachment): void;
  /** Every record's attachment (of this network), for GC. */
  attachments(): Attachment[];
}

function failure(action: string, path: string, error: unknown): CniError {
  return new CniError(
    CniCode.IO_FAILURE,
    `cannot ${action} the pod record ${path}: ${String((error as { code?: unknown }).code ?? error)}`,
    "",
    { cause: error },
  );
}

export class DirectoryPodRecords implements PodRecordStore {
  constructor(
    readonly dir: string,
    private readonly network: string,
  ) {}

  write(attachment: Attachment, text: string): void {
    const path = join(this.dir, podRecordFile(this.network, attachment));
    const temp = `${path}.${process.pid}.tmp`;
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o755 });
      writeFileSync(temp, text, { mode: 0o644 });
      renameSync(temp, path);
    } catch (error) {
      rmSync(temp, { force: true });
      throw failure("write", path, error);
    }
  }

  remove(attachment: Attachment): void {
    const path = join(this.dir, podRecordFile(this.network, attachment));
    try {
      rmSync(path, { force: true });
    } catch (error) {
      throw failure("remove", path, error);
    }
  }

  attachments(): Attachment[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (error) {
      if ((error as { code?: unknown }).code === "ENOENT") return [];
      throw failure("list", this.dir, error);
    }
    const found: Attachment[] = [];
    const prefix = `${this.network}:`;
    for (const name of names) {
      const match = name.startsWith(prefix) ? /^([^:]+):(.+)\.json$/.exec(name.slice(prefix.length)) : null;
      if (match?.[1] === undefined || match[2] === undefined) continue;
      try {
        const record = JSON.parse(readFileSync(join(this.dir, name), "utf8")) as {
          containerID?: unknown;
          ifname?: unknown;
        };
        if (record.containerID === match[1] && record.ifname === match[2])
          found.push({ containerId: match[1], ifname: match[2] });
      } catch {
        found.push({ containerId: match[1], ifname: match[2] }); // torn or foreign: GC decides by its name
      }
    }
    return found;
  }
}
