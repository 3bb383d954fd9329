// A minimal typed event emitter: core modules emit typed events, entry points turn them into logs and metrics.

export type Listener<E> = (event: E) => void;

export class Emitter<E> {
  private readonly listeners = new Set<Listener<E>>();

  /** Subscribes; returns the unsubscribe function. */
  on(listener: Listener<E>): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: E): void {
    for (const listener of [...this.listeners]) listener(event);
  }
}
