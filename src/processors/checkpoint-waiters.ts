/**
 * The signal "processor P has committed through offset N". A caller that must read another
 * processor's projection, or answer only once a processor has seen an event, waits here
 * instead of polling: the commit of a delivered batch wakes every waiter at or below the new
 * checkpoint. A wait never ends in silence: it rejects after its timeout, and the host owner
 * can fail a processor's waiters at once when it learns the processor cannot get there (its
 * subscription parked). Waiters live in memory only; an eviction drops them along with the
 * calls that were waiting, which fail with the eviction.
 */

interface Waiter {
  offset: number;
  resolve(): void;
  reject(error: Error): void;
}

export class CheckpointWaiters {
  readonly #waiters = new Map<string, Set<Waiter>>();

  /**
   * Resolves when `wake(name, c)` is called with `c >= offset`; rejects with
   * `onTimeout()` after `timeoutMs`, or with the error given to `fail(name, …)`.
   */
  wait(name: string, offset: number, timeoutMs: number, onTimeout: () => Error): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const settle = (then: () => void) => {
        clearTimeout(timer);
        this.#remove(name, waiter);
        then();
      };
      const waiter: Waiter = {
        offset,
        resolve: () => settle(resolve),
        reject: (error) => settle(() => reject(error)),
      };
      const timer = setTimeout(() => waiter.reject(onTimeout()), timeoutMs);
      const set = this.#waiters.get(name) ?? new Set<Waiter>();
      this.#waiters.set(name, set);
      set.add(waiter);
    });
  }

  /** A commit brought `name` through `checkpoint`. */
  wake(name: string, checkpoint: number): void {
    for (const waiter of [...(this.#waiters.get(name) ?? [])]) {
      if (waiter.offset <= checkpoint) waiter.resolve();
    }
  }

  /** `name` cannot make progress: every wait on it fails now with `error`. */
  fail(name: string, error: Error): void {
    for (const waiter of [...(this.#waiters.get(name) ?? [])]) waiter.reject(error);
  }

  /** How many waits are pending on `name`. */
  pending(name: string): number {
    return this.#waiters.get(name)?.size ?? 0;
  }

  #remove(name: string, waiter: Waiter): void {
    const set = this.#waiters.get(name);
    set?.delete(waiter);
    if (set?.size === 0) this.#waiters.delete(name);
  }
}
