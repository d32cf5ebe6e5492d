/**
 * The index processor mirrors each session's status line into D1 (the session list). The
 * D1 row is a projection: an upsert guarded by the offset it reflects, written before the
 * checkpoint moves (blockProcessorWhile), so a replay can only rewrite the same row.
 *
 * Stuck processors: when the stream parks one of this session's own subscriptions (e.g. the
 * agent cannot append its reply), it appends `stream/subscriber-parked` to the session
 * stream itself. The index consumes that event like any other, so the knowledge is durable
 * (reduced state + checkpoint, replayed after any eviction, rebuilt by a reindex) and the
 * row shows `failed` with the stuck processor's error within one delivery. `-resumed`,
 * `-skipped` or `-recovered` clear it, and the status returns to what the session's own
 * events say (the park stays in the stream as history). One gap is inherent: if the index's
 * own subscription is parked, it sees neither the event nor D1; the subscription's status
 * (`GET /v1/subscriptions`) and the stream's event still show it.
 *
 * Coalescing: a row is written a moment (MIRROR_SETTLE_MS) after its batch, and not at all
 * when by then a newer event the index consumes is already committed (that one gets a batch,
 * and a row, of its own; it is in the stream, so it is delivered even after a crash). A fast
 * turn's `running` then `idle` is one D1 write, not two. While a session stays that busy, a
 * row is still written at least every MIRROR_MAX_LAG_MS.
 */
import type { TypedEvent } from "../../processors/contract";
import { type BatchHookArgs, type ReduceArgs, StreamProcessor } from "../../processors/processor";
import { indexContract, type ParkedSubscription } from "../contracts";
import type { SessionStatus } from "../events";
import { reduceSummary, type SessionEvent, type SessionSummary } from "../summary";

/** How long a row waits for a newer event before it is written. */
export const MIRROR_SETTLE_MS = 30;
/** The longest the row is left behind while newer events keep coming. */
export const MIRROR_MAX_LAG_MS = 1_000;

/** Whether a batch's row may be left to a newer batch (pure; see the module comment). */
export function supersededRow(newerCommitted: boolean, lastWriteAt: number, now: number): boolean {
  return newerCommitted && now - lastWriteAt < MIRROR_MAX_LAG_MS;
}

export interface IndexRow {
  title: string;
  status: SessionStatus;
  model: string;
  createdAt: string;
  updatedAt: string;
  lastOffset: number;
  pendingApprovalCount: number;
  lastError: string | null;
}

export class IndexProcessor extends StreamProcessor<typeof indexContract> {
  readonly contract = indexContract;
  /** When this instance last wrote the row (a fresh instance writes at once). */
  #lastWriteAt = 0;

  constructor(
    private readonly write: (row: IndexRow) => Promise<void>,
    /** Whether a subscription key is one of this session's own processors. */
    private readonly ownKey: (key: string) => boolean,
    /** Told after each batch which own subscriptions are parked (waiters on them give up). */
    private readonly onParked: (parked: ParkedSubscription[]) => void = () => {},
  ) {
    super();
  }

  reduce({ state, event }: ReduceArgs<typeof indexContract>) {
    return {
      summary: reduceSummary(state.summary, event as SessionEvent),
      createdAt: state.createdAt ?? event.createdAt,
      updatedAt: event.createdAt,
      parked: this.#reduceParked(state.parked, event),
    };
  }

  #reduceParked(
    parked: ParkedSubscription[],
    event: TypedEvent<typeof indexContract>,
  ): ParkedSubscription[] {
    switch (event.type) {
      case "stream/subscriber-parked": {
        if (!this.ownKey(event.payload.key)) return parked;
        const entry = {
          key: event.payload.key,
          stuckOffset: event.payload.stuckOffset,
          error: event.payload.error.slice(0, 1_000),
        };
        return [...parked.filter((p) => p.key !== entry.key), entry].slice(-20);
      }
      case "stream/subscriber-resumed":
      case "stream/subscriber-skipped":
      case "stream/subscriber-recovered": {
        const key = event.payload.key;
        return parked.some((p) => p.key === key) ? parked.filter((p) => p.key !== key) : parked;
      }
      default:
        return parked;
    }
  }

  override async processBatch({ state, checkpoint }: BatchHookArgs<typeof indexContract>) {
    if (state.parked.length > 0) this.onParked(state.parked);
    if (state.createdAt === null) return;
    const { summary } = state;
    const stuck = effectiveStatus(summary, state.parked);
    const row: IndexRow = {
      title: summary.title,
      status: stuck.status,
      model: summary.model,
      createdAt: state.createdAt,
      updatedAt: state.updatedAt ?? state.createdAt,
      lastOffset: checkpoint,
      pendingApprovalCount: summary.pendingApprovals.length,
      lastError: stuck.lastError,
    };
    // Written before the checkpoint moves, unless a newer batch will write a newer row.
    await this.blockProcessorWhile(
      (async () => {
        // Already superseded (a backlog): no wait. Otherwise give a newer event a moment.
        if (!this.newerEventCommitted())
          await new Promise((resolve) => setTimeout(resolve, MIRROR_SETTLE_MS));
        if (supersededRow(this.newerEventCommitted(), this.#lastWriteAt, Date.now())) return;
        await this.write(row);
        this.#lastWriteAt = Date.now();
      })(),
    );
  }
}

/**
 * A session with a parked processor is `failed`, whatever its events say, with the stuck
 * processor's error; once nothing is parked it is what its events say.
 */
export function effectiveStatus(
  summary: { status: SessionSummary["status"]; lastError: string | null },
  parked: ParkedSubscription[],
): { status: SessionSummary["status"]; lastError: string | null } {
  const first = parked[0];
  if (!first || summary.status === "deleted") return summary;
  const processor = first.key.slice(0, Math.max(0, first.key.indexOf("@")));
  return {
    status: "failed",
    lastError: `${processor} processor parked at offset ${first.stuckOffset}: ${first.error}`,
  };
}
