/**
 * Live readers (long-poll and SSE) wait here for the next commit. The commit itself wakes
 * them (`notify` is called right after a transaction), so no reader polls SQLite. Waiters
 * are in memory only: if the DO is evicted, their connections drop with it and clients
 * reconnect from the last offset they saw, which the protocol makes lossless.
 */
export type WakeReason = "data" | "closed" | "deleted" | "timeout" | "aborted";

interface Waiter {
  after: number;
  wake: (reason: WakeReason) => void;
}

export class TailWaiters {
  #waiters = new Set<Waiter>();

  /**
   * Resolves when a message past `after` is committed, the stream closes or is deleted,
   * `timeoutMs` passes, or `signal` aborts.
   */
  wait(after: number, timeoutMs: number, signal?: AbortSignal): Promise<WakeReason> {
    return new Promise<WakeReason>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const onAbort = () => done("aborted");
      const waiter: Waiter = { after, wake: (reason) => done(reason) };
      const done = (reason: WakeReason) => {
        if (!this.#waiters.delete(waiter)) return;
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        resolve(reason);
      };
      this.#waiters.add(waiter);
      if (signal?.aborted) return done("aborted");
      signal?.addEventListener("abort", onAbort);
      timer = setTimeout(() => done("timeout"), timeoutMs);
    });
  }

  /**
   * A wait with no timer or signal of its own, for a reader that waits many times (an SSE
   * connection keeps one timer and one abort listener for all its waits and calls `wake`):
   * `woken` resolves on a commit past `after`, a close or delete, or `wake`, whichever is first.
   */
  park(after: number): { woken: Promise<WakeReason>; wake: (reason: WakeReason) => void } {
    let wake!: (reason: WakeReason) => void;
    const woken = new Promise<WakeReason>((resolve) => {
      const waiter: Waiter = {
        after,
        wake: (reason) => {
          if (this.#waiters.delete(waiter)) resolve(reason);
        },
      };
      this.#waiters.add(waiter);
      wake = waiter.wake;
    });
    return { woken, wake };
  }

  /** Wakes every waiter positioned before `tail`. */
  notifyData(tail: number): void {
    for (const waiter of [...this.#waiters]) if (waiter.after < tail) waiter.wake("data");
  }

  notifyAll(reason: "closed" | "deleted"): void {
    for (const waiter of [...this.#waiters]) waiter.wake(reason);
  }
}
