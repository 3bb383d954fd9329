// The few raw syscalls Node lacks (setns for entering a network namespace, flock for the CNI plugin's IPAM lock, a
// netlink socket whose requests run on libuv's thread pool), through syscall-napi's native addon. Loaded on first use, by path: the package's ESM entry point also builds
// syscall tables for three architectures (~15 ms against ~2 ms for the addon alone), and a process that never
// needs a raw syscall should not pay even that. Same lookup order as the package's entry point.
import { createRequire } from "node:module";

/** Syscall numbers, as in syscall-napi's own tables. */
const NUMBERS = {
  setns: { x64: 308n, arm64: 268n, arm: 375n },
  flock: { x64: 73n, arm64: 32n, arm: 143n },
  socket: { x64: 41n, arm64: 198n, arm: 281n },
  sendto: { x64: 44n, arm64: 206n, arm: 290n },
  recvfrom: { x64: 45n, arm64: 207n, arm: 292n },
} as const satisfies Record<string, Partial<Record<string, bigint>>>;

/** Buffers are passed as the address of their bytes (the addon keeps them alive for an async call). */
type SyscallArg = bigint | Buffer;

interface SyscallAddon {
  /** Runs on the calling thread; throws Error(strerror(errno)) on failure. */
  syscall_sync(num: bigint, ...args: SyscallArg[]): bigint;
  /** Runs on libuv's thread pool; rejects with Error(strerror(errno)). */
  syscall_async(num: bigint, ...args: SyscallArg[]): Promise<bigint>;
}

let addon: SyscallAddon | undefined;

function syscallAddon(): SyscallAddon {
  if (addon === undefined) {
    const require = createRequire(import.meta.url);
    try {
      addon = require("syscall-napi/build/Release/syscall.node") as SyscallAddon;
    } catch {
      addon = require("syscall-napi/build/Debug/syscall.node") as SyscallAddon;
    }
  }
  return addon;
}

/** The syscall's number on this architecture, or undefined where we do not know it. */
export function syscallNumber(name: keyof typeof NUMBERS): bigint | undefined {
  return (NUMBERS[name] as Partial<Record<string, bigint>>)[process.arch];
}

/** Runs a syscall synchronously on this thread; throws Error(strerror(errno)) as the addon does. */
export function syscallSync(nr: bigint, ...args: SyscallArg[]): bigint {
  return syscallAddon().syscall_sync(nr, ...args);
}

/** Runs a syscall on libuv's thread pool, for one that blocks in the kernel; rejects with Error(strerror(errno)). */
export function syscallAsync(nr: bigint, ...args: SyscallArg[]): Promise<bigint> {
  return syscallAddon().syscall_async(nr, ...args);
}
