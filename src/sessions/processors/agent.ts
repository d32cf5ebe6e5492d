/**
 * The agent processor: conversation state and orchestration. All of its decisions are
 * obligations derived from reduced state (conversation.ts) and fulfilled after every batch
 * with idempotent appends, so it never acts twice and never forgets a cause. The transcript
 * is its projection: rows committed with its state (transcript.ts), never state itself.
 */

import type { StateOf, TypedEvent } from "../../processors/contract";
import type { BatchHookArgs, ProjectArgs } from "../../processors/processor";
import { StreamProcessor } from "../../processors/processor";
import { agentContract } from "../contracts";
import {
  obligations,
  projectAgent,
  reduceAgent,
  type ToolCatalog,
  upgradeAgentState,
} from "../conversation";
import type { SessionEvent } from "../summary";
import { transcriptTables } from "../transcript";

export class AgentProcessor extends StreamProcessor<typeof agentContract> {
  readonly contract = agentContract;
  /** The transcript (transcript.ts), committed with the agent's state and checkpoint. */
  override readonly tables = transcriptTables;

  constructor(private readonly tools: ToolCatalog) {
    super();
  }

  reduce({
    state,
    event,
  }: {
    state: StateOf<typeof agentContract>;
    event: TypedEvent<typeof agentContract>;
  }) {
    return reduceAgent(state, event as SessionEvent);
  }

  override project({ event, previousState, state, tables }: ProjectArgs<typeof agentContract>) {
    projectAgent(tables, event as SessionEvent, previousState, state);
  }

  override upgradeState(stored: unknown) {
    return upgradeAgentState(stored);
  }

  override async processBatch({ state }: BatchHookArgs<typeof agentContract>) {
    const owed = obligations(state, this.tools);
    if (owed.length === 0) return;
    await this.blockProcessorWhile(
      this.append(
        ...owed.map((o) => ({
          type: o.type as never,
          payload: o.payload as never,
          key: o.key,
          causeOffset: o.causeOffset,
        })),
      ),
    );
  }
}
