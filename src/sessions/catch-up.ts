/**
 * The answer when a session's processor cannot catch up with its stream in time for an RPC
 * that must see what it has consumed (a decision judged against the tools processor's state,
 * a message's `queued` flag against the agent's): its subscription is parked (it will not move
 * until resumed or skipped), or it is still behind when the wait times out. A 503 with the
 * processor, the offset it is stuck at or behind, and why, so the caller can retry or act,
 * never a judgment made silently on stale state.
 */
import { DomainError } from "../errors/domain";
import type { ProcessorHost } from "../processors/host";
import { matches } from "../streams/delivery";
import type { ParkedSubscription } from "./contracts";
import type { SessionProcessor } from "./naming";
import type { StreamAccess } from "./stream-access";

export type CatchUpFailure =
  | Pick<ParkedSubscription, "stuckOffset" | "error">
  | { target: number; checkpoint: number; timeoutMs: number };

export class CatchUpError extends DomainError {
  constructor(
    message: string,
    /** What to log about it (structured). */
    readonly log: Record<string, unknown>,
  ) {
    super("unavailable", message, log);
  }
}

export function catchUpFailed(processor: SessionProcessor, why: CatchUpFailure): CatchUpError {
  if ("stuckOffset" in why) {
    return new CatchUpError(
      `the session's ${processor} processor is parked at offset ${why.stuckOffset} (${why.error}); resume or skip its subscription`,
      { processor, parked: true, stuckOffset: why.stuckOffset },
    );
  }
  return new CatchUpError(
    `the session's ${processor} processor has not caught up with offset ${why.target} within ${why.timeoutMs} ms (it is at ${why.checkpoint}); retry`,
    { processor, parked: false, target: why.target, checkpoint: why.checkpoint },
  );
}

/** Most events read per page while looking for what a subscription still has to deliver. */
const SCAN_PAGE = 200;

/**
 * Waits until `processor` (subscribed under `key`) has consumed the stream through `target`.
 * No polling: the stream is asked once where the subscription is; what it still has to
 * deliver up to `target` (events of the types it consumes past its cursor) is awaited on the
 * commit of the delivery that brings the processor there (`host.waitForCheckpoint`). Events
 * it does not consume never reach the host, so the wait is for the last one it does.
 *
 * It cannot be met when the subscription is parked (known at once from the stream, or
 * signalled by `host.failWaiters` while waiting) or after `timeoutMs`; either way the caller
 * gets a CatchUpError saying which and where.
 */
export async function catchUp(
  host: ProcessorHost,
  stream: Pick<StreamAccess, "listSubscriptions" | "read">,
  processor: SessionProcessor,
  key: string,
  target: number,
  timeoutMs: number,
): Promise<void> {
  if (host.checkpoint(processor) >= target) return;
  const sub = (await stream.listSubscriptions()).find((s) => s.key === key);
  // No subscription (a reindex re-creating it): nothing is going to deliver to it.
  if (!sub || sub.cursor >= target) return;
  if (sub.status === "parked") {
    throw catchUpFailed(processor, {
      stuckOffset: sub.stuckOffset ?? sub.cursor + 1,
      error: sub.lastError ?? "delivery failed",
    });
  }
  let due: number | null = null;
  for (let after = sub.cursor; after < target; ) {
    const { events } = await stream.read({ after, limit: SCAN_PAGE });
    if (events.length === 0) break;
    for (const event of events) {
      if (event.offset <= target && matches(sub.eventTypes, event.type)) due = event.offset;
    }
    after = events.at(-1)!.offset;
  }
  if (due === null || host.checkpoint(processor) >= due) return;
  try {
    await host.waitForCheckpoint(processor, due, timeoutMs);
  } catch (error) {
    if (error instanceof CatchUpError) throw error;
    throw catchUpFailed(processor, {
      target: due,
      checkpoint: host.checkpoint(processor),
      timeoutMs,
    });
  }
}
