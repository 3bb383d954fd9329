// Cancellation helpers. Loops take an AbortSignal; SIGTERM in an entry point becomes an abort.

/**
 * signal.aborted read through a call: after an await the compiler would otherwise keep the value it narrowed
 * before (e.g. from a `while (!signal.aborted)` condition) although the signal may have fired meanwhile.
 */
export function isAborted(signal: AbortSignal): boolean {
  return signal.aborted;
}
