// The IPAM store as a directory, in host-local's layout so that operators know it: one file per reserved address
// named by the address, holding "<containerID>\r\n<ifname>"; last_reserved_ip.0; a lock file. Writes are atomic
// without fsync (docs/decisions/0006): a reservation is written to a temp file and link(2)ed to its name, which
// creates it complete or not at all and fails if the address is taken. Temp files are only ever seen by the lock
// holder, so any found there are a killed process's leftovers and are removed.
import { linkSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { formatIpv4, parseIpv4 } from "../../../lib/src/ipv4.js";
import { CniCode, CniError } from "../cni-error.js";
import { withFlock, type LockOptions } from "./flock.js";
import type { Reservation, ReservationStore } from "./store.js";

const LAST_RESERVED = "last_reserved_ip.0";
const LOCK = "lock";
const TEMP_SUFFIX = ".tmp";

function ioError(action: string, path: string, error: unknown): CniError {
  const code = (error as { code?: unknown }).code;
  return new CniError(
    CniCode.IO_FAILURE,
    `cannot ${action} ${path}: ${typeof code === "string" ? code : String(error)}`,
    "",
    { cause: error },
  );
}

function errnoIs(error: unknown, code: string): boolean {
  return (error as { code?: unknown }).code === code;
}

export class FileReservationStore implements ReservationStore {
  private tempCounter = 0;
  private locked = false;

  constructor(
    readonly dir: string,
    private readonly lockOptions: LockOptions,
  ) {}

  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    } catch (error) {
      throw ioError("create the IPAM directory", this.dir, error);
    }
    return await withFlock(join(this.dir, LOCK), this.lockOptions, async () => {
      this.locked = true;
      try {
        return await fn();
      } finally {
        this.locked = false;
      }
    });
  }

  list(): Reservation[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (error) {
      if (errnoIs(error, "ENOENT")) return [];
      throw ioError("list", this.dir, error);
    }
    const reservations: Reservation[] = [];
    for (const name of names) {
      if (name.endsWith(TEMP_SUFFIX)) {
        if (this.locked) rmSync(join(this.dir, name), { force: true });
        continue;
      }
      const ip = parseIpv4(name);
      if (ip === undefined) continue;
      const [containerId = "", ifname = ""] = this.readText(name)?.split("\r\n") ?? [];
      reservations.push({ ip, containerId: containerId.trim(), ifname: ifname.trim() });
    }
    return reservations;
  }

  reserve(r: Reservation): boolean {
    const temp = this.writeTemp(formatIpv4(r.ip), `${r.containerId}\r\n${r.ifname}`);
    try {
      linkSync(temp, join(this.dir, formatIpv4(r.ip)));
      return true;
    } catch (error) {
      if (errnoIs(error, "EEXIST")) return false;
      throw ioError("reserve", join(this.dir, formatIpv4(r.ip)), error);
    } finally {
      rmSync(temp, { force: true });
    }
  }

  release(ip: number): void {
    const path = join(this.dir, formatIpv4(ip));
    try {
      unlinkSync(path);
    } catch (error) {
      if (!errnoIs(error, "ENOENT")) throw ioError("release", path, error);
    }
  }

  lastReserved(): number | undefined {
    return parseIpv4(this.readText(LAST_RESERVED)?.trim() ?? "");
  }

  setLastReserved(ip: number): void {
    const temp = this.writeTemp(LAST_RESERVED, formatIpv4(ip));
    try {
      renameSync(temp, join(this.dir, LAST_RESERVED));
    } catch (error) {
      rmSync(temp, { force: true });
      throw ioError("write", join(this.dir, LAST_RESERVED), error);
    }
  }

  private readText(name: string): string | undefined {
    try {
      return readFileSync(join(this.dir, name), "utf8");
    } catch (error) {
      if (errnoIs(error, "ENOENT")) return undefined;
      throw ioError("read", join(this.dir, name), error);
    }
  }

  private writeTemp(name: string, content: string): string {
    this.tempCounter += 1;
    const temp = join(this.dir, `.${name}.${process.pid}.${this.tempCounter}${TEMP_SUFFIX}`);
    try {
      writeFileSync(temp, content, { flag: "wx", mode: 0o644 });
    } catch (error) {
      throw ioError("write", temp, error);
    }
    return temp;
  }
}
