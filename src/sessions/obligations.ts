/**
 * What the agent owes the stream, as a pure function of its reduced state (conversation.ts):
 * each obligation is one event to append, keyed by the offset of the event that caused it, so
 * the agent processor can fulfil them after every batch and redeliveries, restarts and
 * triggers that arrived before the subscription existed all converge on one append per cause.
 */
import type { z } from "zod";
import type { agentContract } from "./contracts";
import type { AgentState } from "./conversation";
import type { SessionEventPayload, SessionEventType, toolSpecSchema } from "./events";

/** An event the agent owes the stream, keyed by the event that caused it. */
export interface Obligation<T extends SessionEventType = SessionEventType> {
  type: T;
  payload: SessionEventPayload<T>;
  key: string;
  causeOffset: number;
}

export interface ToolCatalog {
  spec(name: string): z.infer<typeof toolSpecSchema> | null;
  needsApproval(name: string): boolean;
}

/** One obligation per event type the agent emits (type and payload kept together). */
export type AgentObligation = {
  [T in (typeof agentContract.emits)[number]]: Obligation<T>;
}[(typeof agentContract.emits)[number]];

export function obligations(state: AgentState, tools: ToolCatalog): AgentObligation[] {
  const out: AgentObligation[] = [];
  const { turn, config } = state;
  if (state.summary.status === "deleted" || config === null) return out;
  if (turn === null) {
    const next = state.queue[0];
    if (next) {
      // Starting a turn and asking the model go out in one append (one hop fewer per turn);
      // both are keyed by the input that caused them.
      const turnId = `turn-${next.offset}`;
      out.push({
        type: "turn/started",
        payload: { turnId, messageId: next.messageId, inputOffset: next.offset },
        key: "start-turn",
        causeOffset: next.offset,
      });
      out.push({
        type: "model/request-requested",
        payload: {
          requestId: `${turnId}-req`,
          turnId,
          model: config.model,
          // The transcript so far plus this turn's input (added by turn/started).
          messageCount: state.messageCount + 1,
        },
        key: "request-model",
        causeOffset: next.offset,
      });
    }
    return out;
  }
  // A turn that is ending owes exactly one event: its cancel, failure or completion.
  const ending: AgentObligation | null = turn.cancel
    ? {
        type: "turn/cancelled",
        payload: { turnId: turn.turnId, reason: turn.cancel.reason },
        key: "cancel-turn",
        causeOffset: turn.cancel.at,
      }
    : turn.failure
      ? {
          type: "session/failed",
          payload: { error: turn.failure.error, turnId: turn.turnId },
          key: "fail-session",
          causeOffset: turn.failure.at,
        }
      : turn.completion
        ? {
            type: "turn/completed",
            payload: { turnId: turn.turnId },
            key: "complete-turn",
            causeOffset: turn.completion.at,
          }
        : null;
  if (ending) return [ending];
  if (turn.readyAt !== null && turn.requestId === null) {
    out.push({
      type: "model/request-requested",
      payload: {
        requestId: `req-${turn.readyAt}`,
        turnId: turn.turnId,
        model: config.model,
        messageCount: state.messageCount,
      },
      key: "request-model",
      causeOffset: turn.readyAt,
    });
  }
  for (const call of turn.calls) {
    if (call.requested) continue;
    out.push({
      type: "tool/call-requested",
      payload: {
        toolCallId: call.toolCallId,
        turnId: turn.turnId,
        toolName: call.toolName,
        input: call.input,
        needsApproval: tools.needsApproval(call.toolName),
      },
      key: `request-tool-${call.toolCallId}`,
      causeOffset: call.causeAt,
    });
  }
  return out;
}

/** The specs of the session's tools (the model processor sends them with every request). */
export function toolSpecs(names: string[], tools: Pick<ToolCatalog, "spec">) {
  return names.flatMap((name) => {
    const spec = tools.spec(name);
    return spec ? [spec] : [];
  });
}
