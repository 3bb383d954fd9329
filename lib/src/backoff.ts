// Exponential backoff with jitter. Every loop that retries names its constants (see the callers) so that the
// behaviour is documented where it is used.

export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly multiplier: number;
  /** Fraction of the delay randomised in both directions: 0.2 → ±20 %. */
  readonly jitter: number;
}

export class Backoff {
  private attempt = 0;

  constructor(
    readonly policy: BackoffPolicy,
    private readonly random: () => number = Math.random,
  ) {}

  /** The delay before the next attempt; grows until maxMs. */
  next(): number {
    const { initialMs, maxMs, multiplier, jitter } = this.policy;
    const base = Math.min(maxMs, initialMs * multiplier ** this.attempt);
    this.attempt += 1;
    const spread = base * jitter * (this.random() * 2 - 1);
    return Math.max(0, Math.round(Math.min(maxMs, base + spread)));
  }

  /** Call after a success so the next failure starts small again. */
  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
