/**
 * Exponential backoff: the one formula behind every retry loop (stream deliveries, model
 * requests, the client's reconnects). Attempt n (1 = the first retry) waits
 * d = min(maxMs, baseMs·2^(n-1)), scaled by a factor drawn uniformly from `jitter`, and never
 * more than maxMs. The loops differ only in their settings: deliveries jitter ±20% around d,
 * the others use "equal jitter" (uniform in [d/2, d]).
 */
export interface Backoff {
  baseMs: number;
  maxMs: number;
  /** The range [low, high] of the random factor applied to the exponential delay. */
  jitter: readonly [low: number, high: number];
}

/** Uniform in [d/2, d]: spreads retries out while keeping at least half the delay. */
export const EQUAL_JITTER = [0.5, 1] as const;

/** Delay in ms before retry number `attempt`; `Infinity` (or any huge attempt) waits about maxMs. */
export function backoffMs(attempt: number, backoff: Backoff, random: () => number = Math.random) {
  const exponent = Math.min(Math.max(0, Math.floor(attempt) - 1), 52);
  const ceiling = Math.min(backoff.maxMs, backoff.baseMs * 2 ** exponent);
  const [low, high] = backoff.jitter;
  const factor = low + (high - low) * Math.min(Math.max(random(), 0), 1);
  return Math.min(backoff.maxMs, Math.round(ceiling * factor));
}
