// Decorators that measure the two adapters the daemon depends on, without either knowing: every Kernel call's
// latency and outcome, every registry call's failures. The entry point feeds the observations into metrics.
import { TrellisError } from "#lib/errors.js";
import type { Kernel } from "#lib/netlink/kernel.js";
import type { SubnetRegistry } from "../lease/registry.js";

export type Observe = (operation: string, seconds: number, error: unknown) => void;

/** Methods whose calls are timed; watch() and close() are not requests. */
const KERNEL_CALLS = [
  "listLinks",
  "getLink",
  "createVxlan",
  "createBridge",
  "createVeth",
  "setLink",
  "setHairpin",
  "deleteLink",
  "listAddresses",
  "addAddress",
  "deleteAddress",
  "listRoutes",
  "replaceRoute",
  "deleteRoute",
  "listNeighbors",
  "replaceNeighbor",
  "deleteNeighbor",
  "listFdb",
  "replaceFdb",
  "deleteFdb",
  "getSysctl",
  "setSysctl",
] as const satisfies readonly (keyof Kernel)[];

const REGISTRY_CALLS = [
  "getNetworkConfig",
  "putNetworkConfig",
  "readNetworkConfig",
  "watchNetworkConfig",
  "listLeases",
  "timeToLive",
  "grantLease",
  "createLease",
  "replaceLease",
  "deleteLease",
  "keepAlive",
  "revoke",
  "watchLeases",
] as const satisfies readonly (keyof SubnetRegistry)[];

/** Every method name along the prototype chain (the adapters are class instances). */
function methodNames(target: object): Set<string> {
  const names = new Set<string>();
  for (
    let proto: object | null = target;
    proto !== null && proto !== Object.prototype;
    proto = Object.getPrototypeOf(proto) as object | null
  ) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (name !== "constructor" && typeof (target as Record<string, unknown>)[name] === "function") names.add(name);
    }
  }
  return names;
}

function timed<T extends object>(target: T, methods: readonly (keyof T)[], observe: Observe): T {
  const wrapped = Object.create(target) as T;
  // Untimed methods still run on the adapter itself (its private state lives there).
  const timedNames = new Set<string>(methods.map(String));
  for (const name of methodNames(target)) {
    if (timedNames.has(name)) continue;
    const fn = (target as Record<string, unknown>)[name] as (...args: unknown[]) => unknown;
    Object.defineProperty(wrapped, name, { value: fn.bind(target) });
  }
  for (const method of methods) {
    const original = target[method];
    if (typeof original !== "function") continue;
    const fn = original as (...args: unknown[]) => Promise<unknown>;
    Object.defineProperty(wrapped, method, {
      value: async (...args: unknown[]): Promise<unknown> => {
        const started = performance.now();
        try {
          const result = await fn.apply(target, args);
          observe(String(method), (performance.now() - started) / 1000, undefined);
          return result;
        } catch (error) {
          observe(String(method), (performance.now() - started) / 1000, error);
          throw error;
        }
      },
    });
  }
  return wrapped;
}

export function instrumentKernel(kernel: Kernel, observe: Observe): Kernel {
  return timed(kernel, KERNEL_CALLS, observe);
}

export function instrumentRegistry(registry: SubnetRegistry, observe: Observe): SubnetRegistry {
  return timed(registry, REGISTRY_CALLS, observe);
}

/** A short label for an error: our code, or "other". */
export function errorLabel(error: unknown): string {
  return error instanceof TrellisError ? error.code : "other";
}
