/**
 * The events a delivery writes about a subscription's health (reserved `stream/` types,
 * appended by the Stream DO itself): a failed attempt with its next retry, parking after the
 * last attempt with the stuck range, and recovery after failures.
 */
import type { CallableError } from "../callables/errors";
import type { Subscription } from "./subscriptions";

/** An attempt failed; the next one is due at `nextRetryAt`. */
export function failed(
  sub: Subscription,
  attempts: number,
  error: CallableError,
  nextRetryAt: number,
) {
  return {
    type: "stream/subscriber-failed",
    payload: {
      key: sub.key,
      attempts,
      error: error.message,
      retryable: error.retryable,
      nextRetryAt: new Date(nextRetryAt).toISOString(),
    },
  };
}

/** The subscription is parked on the events `stuck` names (resume or skip moves it). */
export function parked(
  sub: Subscription,
  attempts: number,
  error: CallableError,
  stuck: { offset: number; through: number },
) {
  return {
    type: "stream/subscriber-parked",
    payload: {
      key: sub.key,
      attempts,
      error: error.message,
      retryable: error.retryable,
      stuckOffset: stuck.offset,
      stuckThrough: stuck.through,
      cursor: sub.cursor,
    },
  };
}

/** Deliveries succeed again after failures. */
export function recovered(sub: Subscription) {
  return { type: "stream/subscriber-recovered", payload: { key: sub.key, attempts: sub.attempts } };
}
