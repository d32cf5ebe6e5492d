/**
 * The agent's orchestration as a pure reducer plus a pure list of obligations. The reducer
 * keeps the conversation, the queue of inputs not yet answered, and the running turn; each
 * fact that calls for an action (an input waiting, a model answer, a tool result, a cancel)
 * is recorded in state together with the offset of the event that caused it. `obligations`
 * then says which events must be appended, each keyed by its cause, so the processor can
 * fulfil them after every batch — redeliveries, restarts and triggers that arrived before the
 * subscription existed all converge on exactly one append per cause.
 */
import { z } from "zod";
import { contentRefSchema } from "./content";
import {
  chatMessageSchema,
  type SessionEventPayload,
  type SessionEventType,
  type toolSpecSchema,
} from "./events";
import { reduceSummary, type SessionEvent, summarySchema } from "./summary";

const turnSchema = z.object({
  turnId: z.string(),
  /** The model request in flight, if any. */
  requestId: z.string().nullable(),
  /** Offset of the event after which the turn needs (another) model request. */
  readyAt: z.number().int().nullable(),
  /** Tool calls the model asked for in this turn, with the offset of the completion that asked. */
  calls: z.array(
    z.object({
      toolCallId: z.string(),
      toolName: z.string(),
      input: z.string(),
      causeAt: z.number().int(),
      requested: z.boolean(),
      done: z.boolean(),
    }),
  ),
  completion: z
    .object({ at: z.number().int(), text: z.string(), textRef: contentRefSchema.optional() })
    .nullable(),
  failure: z.object({ at: z.number().int(), error: z.string() }).nullable(),
  cancel: z.object({ at: z.number().int(), reason: z.string().nullable() }).nullable(),
});

export const agentStateSchema = z.object({
  summary: summarySchema.default(summarySchema.parse({})),
  config: z
    .object({ model: z.string(), system: z.string(), tools: z.array(z.string()) })
    .nullable()
    .default(null),
  messages: z.array(chatMessageSchema).default([]),
  queue: z
    .array(
      z.object({
        messageId: z.string(),
        content: z.string(),
        contentRef: contentRefSchema.optional(),
        offset: z.number().int(),
      }),
    )
    .default([]),
  turn: turnSchema.nullable().default(null),
});
export type AgentState = z.infer<typeof agentStateSchema>;
export const initialAgentState: AgentState = agentStateSchema.parse({});

type Turn = NonNullable<AgentState["turn"]>;

function withTurn(
  state: AgentState,
  turnId: string | undefined,
  change: (turn: Turn) => Partial<Turn>,
): AgentState {
  const turn = state.turn;
  if (!turn || (turnId !== undefined && turn.turnId !== turnId)) return state;
  return { ...state, turn: { ...turn, ...change(turn) } };
}

export function reduceAgent(previous: AgentState, event: SessionEvent): AgentState {
  const state = { ...previous, summary: reduceSummary(previous.summary, event) };
  const at = event.offset;
  switch (event.type) {
    case "session/created":
      return {
        ...state,
        config: {
          model: event.payload.model,
          system: event.payload.system,
          tools: event.payload.tools,
        },
      };
    case "session/input-added":
      if (state.summary.status === "deleted") return state;
      return { ...state, queue: [...state.queue, { ...event.payload, offset: at }] };
    case "turn/started":
      return {
        ...state,
        queue: state.queue.filter((q) => q.messageId !== event.payload.messageId),
        messages: [...state.messages, userMessage(event.payload)],
        turn: {
          turnId: event.payload.turnId,
          requestId: null,
          readyAt: at,
          calls: [],
          completion: null,
          failure: null,
          cancel: null,
        },
      };
    case "model/request-requested":
      return withTurn(state, event.payload.turnId, () => ({
        requestId: event.payload.requestId,
        readyAt: null,
      }));
    case "model/request-completed": {
      const { requestId, text, textRef, toolCalls } = event.payload;
      if (state.turn?.requestId !== requestId) return state; // stale: cancelled or superseded
      const ref = textRef ? { contentRef: textRef } : {};
      const next = {
        ...state,
        messages: [
          ...state.messages,
          { role: "assistant" as const, content: text, ...ref, toolCalls },
        ],
      };
      return withTurn(next, undefined, () => ({
        requestId: null,
        calls: toolCalls.map((c) => ({ ...c, causeAt: at, requested: false, done: false })),
        completion: toolCalls.length === 0 ? { at, text, ...(textRef ? { textRef } : {}) } : null,
      }));
    }
    case "model/request-failed":
      if (state.turn?.requestId !== event.payload.requestId) return state;
      return withTurn(state, undefined, () => ({
        requestId: null,
        failure: { at, error: event.payload.error },
      }));
    case "tool/call-requested":
      return withTurn(state, event.payload.turnId, (turn) => ({
        calls: turn.calls.map((c) =>
          c.toolCallId === event.payload.toolCallId ? { ...c, requested: true } : c,
        ),
      }));
    case "tool/call-completed": {
      const call = state.turn?.calls.find((c) => c.toolCallId === event.payload.toolCallId);
      if (!call || call.done) return state;
      const { toolCallId, toolName, result, resultRef, isError } = event.payload;
      const ref = resultRef ? { resultRef } : {};
      const next = {
        ...state,
        messages: [
          ...state.messages,
          { role: "tool" as const, toolCallId, toolName, result, ...ref, isError },
        ],
      };
      return withTurn(next, undefined, (turn) => {
        const calls = turn.calls.map((c) =>
          c.toolCallId === toolCallId ? { ...c, done: true } : c,
        );
        return { calls, readyAt: calls.every((c) => c.done) ? at : turn.readyAt };
      });
    }
    case "session/cancel-requested":
      return withTurn({ ...state, queue: [] }, undefined, (turn) => ({
        cancel: turn.cancel ?? { at, reason: event.payload.reason },
      }));
    case "turn/completed":
    case "turn/cancelled":
      return state.turn?.turnId === event.payload.turnId ? { ...state, turn: null } : state;
    case "session/failed":
      return { ...state, turn: null };
    case "session/deleted":
      return { ...state, turn: null, queue: [] };
    default:
      return state;
  }
}

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

export function obligations(state: AgentState, tools: ToolCatalog): Obligation[] {
  const out: Obligation[] = [];
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
        payload: {
          turnId,
          messageId: next.messageId,
          content: next.content,
          ...(next.contentRef ? { contentRef: next.contentRef } : {}),
        },
        key: "start-turn",
        causeOffset: next.offset,
      });
      out.push({
        type: "model/request-requested",
        payload: {
          requestId: `${turnId}-req`,
          turnId,
          model: config.model,
          system: config.system,
          messages: [...state.messages, userMessage(next)],
          tools: toolSpecs(config.tools, tools),
        },
        key: "request-model",
        causeOffset: next.offset,
      });
    }
    return out;
  }
  // A turn that is ending owes exactly one event: its cancel, failure or completion.
  const ending: Obligation | null = turn.cancel
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
            payload: {
              turnId: turn.turnId,
              text: turn.completion.text,
              ...(turn.completion.textRef ? { textRef: turn.completion.textRef } : {}),
            },
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
        system: config.system,
        messages: state.messages,
        tools: toolSpecs(config.tools, tools),
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

/** A user message with its content inline, or by reference when it was stored in chunks. */
function userMessage(input: {
  content: string;
  contentRef?: z.infer<typeof contentRefSchema> | undefined;
}): z.infer<typeof chatMessageSchema> {
  return input.contentRef
    ? { role: "user", content: input.content, contentRef: input.contentRef }
    : { role: "user", content: input.content };
}

function toolSpecs(names: string[], tools: ToolCatalog) {
  return names.flatMap((name) => {
    const spec = tools.spec(name);
    return spec ? [spec] : [];
  });
}
