// The real PodRecordSource: the CNI plugin's record directory (its podRecordDir, the agent's --pod-record-dir).
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { decodePodRecord, type PodRecord } from "#lib/pod-record.js";
import type { PodRecordSource } from "./pod-publisher.js";

export class DirectoryPodRecordSource implements PodRecordSource {
  constructor(readonly dir: string) {}

  async read(): Promise<{ records: PodRecord[]; unreadable: { file: string; reason: string }[] }> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return { records: [], unreadable: [] };
      throw error;
    }
    const records: PodRecord[] = [];
    const unreadable: { file: string; reason: string }[] = [];
    for (const name of names.filter((n) => n.endsWith(".json")).sort()) {
      const file = join(this.dir, name);
      try {
        records.push(decodePodRecord(await readFile(file, "utf8")));
      } catch (error) {
        // Removed between the listing and the read is no problem; anything else is named.
        if ((error as NodeJS.ErrnoException).code !== "ENOENT")
          unreadable.push({ file, reason: error instanceof Error ? error.message : String(error) });
      }
    }
    return { records, unreadable };
  }
}
