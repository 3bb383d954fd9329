// The plugin's ports in memory: a FakeWorld kernel, a reservation store per data dir, files in a Map.
import { CniCode, CniError } from "../../src/cni-error.js";
import type { PluginDeps } from "../../src/deps.js";
import type { Reservation, ReservationStore } from "../../src/ipam/store.js";
import { FakeWorld } from "./fake-kernel.js";

export class MemoryStore implements ReservationStore {
  readonly reservations = new Map<number, Reservation>();
  last: number | undefined;
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
  release(ip: number): void {
    this.reservations.delete(ip);
  }
  lastReserved(): number | undefined {
    return this.last;
  }
  setLastReserved(ip: number): void {
    this.last = ip;
  }
}

export class FakeDeps implements PluginDeps {
  readonly world = new FakeWorld();
  readonly stores = new Map<string, MemoryStore>();
  readonly files = new Map<string, string>();

  hostKernel(): Promise<ReturnType<FakeWorld["kernel"]>> {
    return Promise.resolve(this.world.kernel("host"));
  }

  podKernel(netns: string): Promise<ReturnType<FakeWorld["kernel"]>> {
    if (!this.world.namespaces.has(netns)) {
      return Promise.reject(
        new CniError(CniCode.UNKNOWN_CONTAINER, `CNI_NETNS ${JSON.stringify(netns)} does not exist`),
      );
    }
    return Promise.resolve(this.world.kernel(netns));
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
