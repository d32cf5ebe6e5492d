/**
 * Streams a model's text to the session stream as `model/delta-produced` events, coalesced.
 *
 * Why coalesce: a provider (or the scripted model at zero delay) can produce text far faster
 * than one append takes. Writing one event per provider delta piles thousands of events into
 * the next append and breaks the stream's batch limits (≤ 1,000 events); it also multiplies
 * the log's per-event overhead. So the writer keeps at most one append in flight: the first
 * text goes out as soon as the current task ends (a live reader sees it within one append's
 * latency; text produced in the same task goes with it, so a reply that is complete at once
 * — a cached or instant model — goes out with its outcome in one append, via `finish`), and
 * everything that arrives while an append is in flight goes out as ONE event in the next append. Appends
 * also start at least `minIntervalMs` apart (a tiny max-wait), so a slow, token-by-token
 * provider does not write one event per token either: a reader sees text at most
 * `minIntervalMs` plus one append after it was produced. `flush` (end of the reply) skips
 * the wait.
 *
 * Bounds: one event carries at most `maxEventBytes` of stored (JSON-escaped UTF-8) text, one
 * append at most `maxEvents` events and `maxAppendBytes`; text beyond that waits for the next
 * append. So any reply length streams, each append is bounded, and the work per append is
 * proportional to what it carries (pending text is cut from the front, never rescanned).
 *
 * Each event has a dense sequence number (`index`) within the attempt; with the attempt it
 * keys the append, so a retried append collapses at the stream.
 */
import { pieceEnd } from "../content";

export interface DeltaLimits {
  maxEventBytes: number;
  maxEvents: number;
  maxAppendBytes: number;
  /** Least time between the starts of two appends (0: append as soon as the last is done). */
  minIntervalMs: number;
}

export const DEFAULT_DELTA_LIMITS: DeltaLimits = {
  maxEventBytes: 64 * 1024,
  maxEvents: 64,
  maxAppendBytes: 1024 * 1024,
  minIntervalMs: 20,
};

export interface Delta {
  index: number;
  text: string;
}

/**
 * Cuts the next append from the pending text: whole events of at most `maxEventBytes` while
 * the append stays within `maxEvents` and `maxAppendBytes`. Returns the events and how many
 * UTF-16 units of `pending` they consumed. Pure.
 */
export function takeDeltas(
  pending: string,
  firstIndex: number,
  limits: DeltaLimits,
): { deltas: Delta[]; consumed: number } {
  const deltas: Delta[] = [];
  let start = 0;
  let budget = limits.maxAppendBytes;
  while (start < pending.length && deltas.length < limits.maxEvents) {
    const max = Math.min(limits.maxEventBytes, budget);
    // The first event always fits a character (limits are ≥ 6 bytes, a character ≤ 6).
    const { end, bytes } = pieceEnd(pending, start, max, false);
    if (end === start) break;
    deltas.push({ index: firstIndex + deltas.length, text: pending.slice(start, end) });
    budget -= bytes;
    start = end;
  }
  return { deltas, consumed: start };
}

export class DeltaWriter {
  #pending = "";
  #next = 0;
  #flushing: Promise<void> | null = null;
  #error: unknown = null;
  #appends = 0;
  #lastAppendAt = Number.NEGATIVE_INFINITY;
  /** Ends the current max-wait early (set while waiting). */
  #hurry: (() => void) | null = null;
  #hurried = false;
  /** Set by `finish`: the drain stops after its in-flight append and leaves the rest. */
  #finishing = false;

  constructor(
    private readonly write: (batch: Delta[]) => Promise<unknown>,
    private readonly limits: DeltaLimits = DEFAULT_DELTA_LIMITS,
  ) {
    if (limits.maxEventBytes < 6 || limits.maxEvents < 1 || limits.maxAppendBytes < 6)
      throw new Error("delta limits are too small");
  }

  /** Number of appends made so far (for tests and measurements). */
  get appends(): number {
    return this.#appends;
  }

  /** Number of delta events written so far. */
  get events(): number {
    return this.#next;
  }

  /** Queues text; it goes out now if no append is in flight, else with the next one. */
  push(text: string): void {
    if (text === "") return;
    this.#pending += text;
    if (!this.#flushing && this.#error === null) this.#flushing = this.#drain();
  }

  async #drain(): Promise<void> {
    try {
      while (this.#pending.length > 0 && this.#error === null) {
        // The first append waits for the current task to end (0 ms), later ones the interval.
        const wait =
          this.#appends === 0 ? 0 : this.#lastAppendAt + this.limits.minIntervalMs - Date.now();
        if ((wait > 0 || this.#appends === 0) && !this.#hurried) await this.#wait(wait);
        if (this.#finishing) break;
        this.#lastAppendAt = Date.now();
        const { deltas, consumed } = takeDeltas(this.#pending, this.#next, this.limits);
        this.#pending = this.#pending.slice(consumed);
        this.#next += deltas.length;
        this.#appends += 1;
        await this.write(deltas);
      }
    } catch (error) {
      this.#error ??= error;
    } finally {
      this.#flushing = null;
    }
  }

  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#hurry = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#hurry = done;
    });
  }

  /**
   * Waits for every text pushed so far to be appended, without the max-wait (the text is
   * complete); rethrows the first append failure.
   */
  async flush(): Promise<void> {
    this.#hurried = true;
    this.#hurry?.();
    while (this.#flushing) await this.#flushing;
    if (this.#pending.length > 0 && this.#error === null) {
      this.#flushing = this.#drain();
      await this.#flushing;
    }
    if (this.#error !== null) throw this.#error;
  }

  /**
   * Like `flush`, but hands the reply's last append of deltas to the caller instead of writing
   * it, so that it can go out in one append with what ends the reply (one commit, not two).
   * Text beyond one append's bounds is written as usual first; nothing may be pushed after.
   */
  async finish(): Promise<Delta[]> {
    this.#finishing = true;
    this.#hurried = true;
    this.#hurry?.();
    while (this.#flushing) await this.#flushing;
    if (this.#error !== null) throw this.#error;
    while (this.#pending.length > 0) {
      const { deltas, consumed } = takeDeltas(this.#pending, this.#next, this.limits);
      this.#pending = this.#pending.slice(consumed);
      this.#next += deltas.length;
      if (this.#pending.length === 0) return deltas;
      this.#appends += 1;
      await this.write(deltas);
    }
    return [];
  }
}
