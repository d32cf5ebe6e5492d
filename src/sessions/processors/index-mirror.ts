/**
 * The index processor mirrors each session's status line into D1 (the session list). The
 * D1 row is a projection: an upsert guarded by the offset it reflects, written before the
 * checkpoint moves (blockProcessorWhile), so a replay can only rewrite the same row.
 */
import type { StateOf, TypedEvent } from "../../processors/contract";
import { type BatchHookArgs, StreamProcessor } from "../../processors/processor";
import { indexContract } from "../contracts";
import { reduceSummary, type SessionEvent } from "../summary";

export interface IndexRow {
  title: string;
  status: string;
  model: string;
  createdAt: string;
  updatedAt: string;
  lastOffset: number;
  pendingApprovals: number;
  lastError: string | null;
}

export class IndexProcessor extends StreamProcessor<typeof indexContract> {
  readonly contract = indexContract;

  constructor(private readonly write: (row: IndexRow) => Promise<void>) {
    super();
  }

  reduce({
    state,
    event,
  }: {
    state: StateOf<typeof indexContract>;
    event: TypedEvent<typeof indexContract>;
  }) {
    return {
      summary: reduceSummary(state.summary, event as SessionEvent),
      createdAt: state.createdAt ?? event.createdAt,
      updatedAt: event.createdAt,
    };
  }

  override async processBatch({ state, checkpoint }: BatchHookArgs<typeof indexContract>) {
    if (state.createdAt === null) return;
    const { summary } = state;
    await this.blockProcessorWhile(
      this.write({
        title: summary.title,
        status: summary.status,
        model: summary.model,
        createdAt: state.createdAt,
        updatedAt: state.updatedAt ?? state.createdAt,
        lastOffset: checkpoint,
        pendingApprovals: summary.pendingApprovals.length,
        lastError: summary.lastError,
      }),
    );
  }
}
