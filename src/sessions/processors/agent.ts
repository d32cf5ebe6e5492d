/**
 * The agent processor: conversation state and orchestration. All of its decisions are
 * obligations derived from reduced state (conversation.ts) and fulfilled after every batch
 * with idempotent appends, so it never acts twice and never forgets a cause. The transcript
 * is its projection: rows committed with its state (transcript.ts), never state itself. If
 * the stream refuses what the agent owes (a 4xx, e.g. an event over the size limit), retrying
 * cannot help: the agent emits `session/failed` with the reason, so the session shows
 * `failed` with `lastError` instead of retrying the delivery in silence.
 */
import { DomainError, isFault } from "../../errors/domain";
import type { StateOf } from "../../processors/contract";
import type { BatchHookArgs, ProjectArgs, ReduceArgs } from "../../processors/processor";
import { StreamProcessor } from "../../processors/processor";
import { agentContract } from "../contracts";
import { projectAgent, reduceAgent, upgradeAgentState } from "../conversation";
import { obligations, type ToolCatalog } from "../obligations";
import type { SessionEvent } from "../summary";
import { transcriptTables } from "../transcript";

export class AgentProcessor extends StreamProcessor<typeof agentContract> {
  readonly contract = agentContract;
  /** The transcript (transcript.ts), committed with the agent's state and checkpoint. */
  override readonly tables = transcriptTables;

  constructor(private readonly tools: ToolCatalog) {
    super();
  }

  reduce({ state, event }: ReduceArgs<typeof agentContract>) {
    return reduceAgent(state, event as SessionEvent);
  }

  override project({ event, previousState, state, tables }: ProjectArgs<typeof agentContract>) {
    projectAgent(tables, event as SessionEvent, previousState, state);
  }

  override upgradeState(stored: unknown) {
    return upgradeAgentState(stored);
  }

  /** What the agent owes in `state` (obligations.ts); processBatch appends exactly these. */
  override owed(state: StateOf<typeof agentContract>) {
    return obligations(state, this.tools);
  }

  override async processBatch({ state }: BatchHookArgs<typeof agentContract>) {
    const owed = this.owed(state);
    if (owed.length === 0) return;
    await this.blockProcessorWhile(
      this.append(...owed).catch(async (error) => {
        if (!(error instanceof DomainError) || isFault(error.code)) throw error;
        const cause = owed[0]!;
        await this.append({
          type: "session/failed",
          payload: {
            error: `the session cannot continue: ${cause.type} was refused: ${error.message}`,
            turnId: state.turn?.turnId ?? null,
          },
          key: `refused-${cause.key}`,
          causeOffset: cause.causeOffset,
        });
      }),
    );
  }
}
