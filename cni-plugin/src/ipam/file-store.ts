// The IPAM store as a directory, in host-local's layout so that operators know it: one file per reserved address
// named by the address (IPv6 in RFC 5952 form), holding "<containerID>\r\n<ifname>"; last_reserved_ip.0 (IPv4) and
// last_reserved_ip.1 (IPv6: host-local's second range, as flannel's dual-stack config orders them); a lock file.
// Writes are atomic without fsync (docs/decisions/0006): a reservation is written to a temp file and link(2)ed to its
// name, which creates it complete or not at all and fails if the address is taken. Temp files are only ever seen by
// the lock holder, so any found there are a killed process's leftovers and are removed.
import { linkSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseIpv4 } from "#lib/ipv4.js";
import type { IpFamily } from "#lib/netlink/kernel.js";
import { CniCode, CniError } from "../cni-error.js";
import { withFlock, type LockOptions } from "./flock.js";
import { familyOfAddress, formatAddress, type Address, type Reservation, type ReservationStore } from "./store.js";

/** An IPv6 name as we write them (RFC 5952: lowercase hex groups and colons), recognised without parsing it. */
const IPV6_NAME = /^[0-9a-f]{0,4}(:[0-9a-f]{0,4}){2,7}$/;

function addressOfName(name: string): Address | undefined {
  return parseIpv4(name) ?? (IPV6_NAME.test(name) ? name : undefined);
}

const LAST_RESERVED: Record<IpFamily, string> = { 4: "last_reserved_ip.0", 6: "last_reserved_ip.1" };
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
      const ip = addressOfName(name);
      if (ip === undefined) continue;
      const [containerId = "", ifname = ""] = this.readText(name)?.split("\r\n") ?? [];
      reservations.push({ ip, containerId: containerId.trim(), ifname: ifname.trim() });
    }
    return reservations;
  }

  reserve(r: Reservation): boolean {
    const name = formatAddress(r.ip);
    const temp = this.writeTemp(name, `${r.containerId}\r\n${r.ifname}`);
    try {
      linkSync(temp, join(this.dir, name));
      return true;
    } catch (error) {
      if (errnoIs(error, "EEXIST")) return false;
      throw ioError("reserve", join(this.dir, name), error);
    } finally {
      rmSync(temp, { force: true });
    }
  }

  release(ip: Address): void {
    const path = join(this.dir, formatAddress(ip));
    try {
      unlinkSync(path);
    } catch (error) {
      if (!errnoIs(error, "ENOENT")) throw ioError("release", path, error);
    }
  }

  lastReserved(family: IpFamily): Address | undefined {
    const ip = addressOfName(this.readText(LAST_RESERVED[family])?.trim() ?? "");
    return ip !== undefined && familyOfAddress(ip) === family ? ip : undefined;
  }

  setLastReserved(ip: Address): void {
    const name = LAST_RESERVED[familyOfAddress(ip)];
    const temp = this.writeTemp(name, formatAddress(ip));
    try {
      renameSync(temp, join(this.dir, name));
    } catch (error) {
      rmSync(temp, { force: true });
      throw ioError("write", join(this.dir, name), error);
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
