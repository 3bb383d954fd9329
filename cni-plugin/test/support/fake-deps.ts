// The plugin's ports in memory: a FakeWorld kernel, a reservation store per data dir, files in a Map.
import { readlinkSync } from "node:fs";
import { CniCode, CniError } from "../../src/cni-error.js";
import type { PluginDeps } from "../../src/deps.js";
import type { Attachment } from "../../src/env.js";
import type { IpFamily } from "#lib/netlink/kernel.js";
import { familyOfAddress, type Address, type Reservation, type ReservationStore } from "../../src/ipam/store.js";
import type { PodRecordStore } from "../../src/pod-records.js";
import { FakeWorld } from "../../../lib/test/support/fake-kernel.js";

/** IPv4 addresses are numbers, IPv6 ones bigints: a Map tells 5 from 5n. */
export class MemoryStore implements ReservationStore {
  readonly reservations = new Map<Address, Reservation>();
  readonly last = new Map<IpFamily, Address>();
  private tail: Promise<unknown> = Promise.resolve();
  locks = 0;

  withLock<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(async () => {
      this.locks += 1;
      return await fn();
    });
    this.tail = run.catch(() => undefined);
    return run;
  }
  list(): Reservation[] {
    return [...this.reservations.values()].map((r) => ({ ...r }));
  }
  reserve(r: Reservation): boolean {
    if (this.reservations.has(r.ip)) return false;
    this.reservations.set(r.ip, { ...r });
    return true;
  }
  release(ip: Address): void {
    this.reservations.delete(ip);
  }
  lastReserved(family: IpFamily): Address | undefined {
    return this.last.get(family);
  }
  setLastReserved(ip: Address): void {
    this.last.set(familyOfAddress(ip), ip);
  }
}

export class MemoryPodRecords implements PodRecordStore {
  readonly records = new Map<string, string>();

  write(attachment: Attachment, text: string): void {
    this.records.set(`${attachment.containerId}:${attachment.ifname}`, text);
  }
  remove(attachment: Attachment): void {
    this.records.delete(`${attachment.containerId}:${attachment.ifname}`);
  }
  attachments(): Attachment[] {
    return [...this.records.keys()].map((key) => ({
      containerId: key.split(":")[0] ?? "",
      ifname: key.split(":")[1] ?? "",
    }));
  }
}

export class FakeDeps implements PluginDeps {
  readonly world = new FakeWorld();
  readonly stores = new Map<string, MemoryStore>();
  readonly files = new Map<string, string>();
  readonly recordDirs = new Map<string, MemoryPodRecords>();

  /** Keyed "<dir>\n<network>". */
  podRecords(dir: string, network: string): MemoryPodRecords {
    let records = this.recordDirs.get(`${dir}\n${network}`);
    if (records === undefined) {
      records = new MemoryPodRecords();
      this.recordDirs.set(`${dir}\n${network}`, records);
    }
    return records;
  }

  hostKernel(): Promise<ReturnType<FakeWorld["kernel"]>> {
    return Promise.resolve(this.world.kernel("host"));
  }

  /** The caller's own namespace and ours, as the real adapters report them; the fake world's are "fake:[<name>]". */
  readonly callers = ["fake:[host]"];

  callerNamespaces(): readonly string[] {
    return this.callers;
  }

  /**
   * `openAt` (the descriptor a shim passed to the service) reaches the same fake namespace as its name; the kernel
   * then reports the real identity of what was passed, as the real adapter does.
   */
  podKernel(netns: string, openAt?: string): Promise<ReturnType<FakeWorld["kernel"]>> {
    if (!this.world.namespaces.has(netns)) {
      return Promise.reject(
        new CniError(CniCode.UNKNOWN_CONTAINER, `CNI_NETNS ${JSON.stringify(netns)} does not exist`),
      );
    }
    return Promise.resolve(this.world.kernel(netns, openAt === undefined ? undefined : readlinkSync(openAt)));
  }

  store(dataDir: string): MemoryStore {
    let store = this.stores.get(dataDir);
    if (store === undefined) {
      store = new MemoryStore();
      this.stores.set(dataDir, store);
    }
    return store;
  }

  readFile(path: string): string | undefined {
    return this.files.get(path);
  }

  /** Every reservation in every store. */
  allReservations(): Reservation[] {
    return [...this.stores.values()].flatMap((s) => s.list());
  }
}
