/**
 * The agent's orchestration as a pure reducer plus a pure list of obligations. The reducer
 * keeps the queue of inputs not yet answered, the running turn and the transcript's length;
 * the transcript itself lives in rows (transcript.ts) that `projectAgent` writes in the same
 * transaction as this state, so the state stays small however long the conversation. Each
 * fact that calls for an action (an input waiting, a model answer, a tool result, a cancel)
 * is recorded in state together with the offset of the event that caused it. `obligations`
 * (obligations.ts) then says which events must be appended, each keyed by its cause, so the processor can
 * fulfil them after every batch — redeliveries, restarts and triggers that arrived before the
 * subscription existed all converge on exactly one append per cause.
 */
import { z } from "zod";
import type { ProcessorTables, StateUpgrade } from "../processors/processor";
import { type ContentRef, contentRefSchema } from "./content";
import { type ChatMessage, chatMessageSchema, toolCallSchema } from "./events";
import { reduceSummary, type SessionEvent, summarySchema } from "./summary";
import { deleteText, inputKey, writeMessage, writeText } from "./transcript";

const turnSchema = z.object({
  turnId: z.string(),
  /** Offset of the message the turn answers (null in states stored before it was kept). */
  inputOffset: z.number().int().nullable().default(null),
  /** The model request in flight, if any. */
  requestId: z.string().nullable(),
  /** Offset of the event after which the turn needs (another) model request. */
  readyAt: z.number().int().nullable(),
  /** Tool calls the model asked for in this turn, with the offset of the completion that asked. */
  calls: z.array(
    toolCallSchema.extend({
      causeAt: z.number().int(),
      requested: z.boolean(),
      done: z.boolean(),
    }),
  ),
  completion: z.object({ at: z.number().int() }).nullable(),
  failure: z.object({ at: z.number().int(), error: z.string() }).nullable(),
  cancel: z.object({ at: z.number().int(), reason: z.string().nullable() }).nullable(),
});

export const agentStateSchema = z.object({
  summary: summarySchema.default(summarySchema.parse({})),
  config: z
    .object({ model: z.string(), system: z.string(), tools: z.array(z.string()) })
    .nullable()
    .default(null),
  /** How many messages the transcript rows hold. */
  messageCount: z.number().int().nonnegative().default(0),
  /**
   * Inputs not yet answered; their content waits in the transcript's `texts` rows, or (large
   * content) in chunk events named by `contentRef`.
   */
  queue: z
    .array(
      z.object({
        messageId: z.string(),
        offset: z.number().int(),
        contentRef: contentRefSchema.optional(),
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
      return {
        ...state,
        queue: [
          ...state.queue,
          {
            messageId: event.payload.messageId,
            offset: at,
            ...(event.payload.contentRef ? { contentRef: event.payload.contentRef } : {}),
          },
        ],
      };
    case "turn/started":
      return {
        ...state,
        queue: state.queue.filter((q) => q.messageId !== event.payload.messageId),
        messageCount: state.messageCount + 1,
        turn: {
          turnId: event.payload.turnId,
          inputOffset:
            event.payload.inputOffset ??
            state.queue.find((q) => q.messageId === event.payload.messageId)?.offset ??
            null,
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
      const { requestId, toolCalls } = event.payload;
      if (state.turn?.requestId !== requestId) return state; // stale: cancelled or superseded
      const next = { ...state, messageCount: state.messageCount + 1 };
      return withTurn(next, undefined, () => ({
        requestId: null,
        calls: toolCalls.map((c) => ({ ...c, causeAt: at, requested: false, done: false })),
        completion: toolCalls.length === 0 ? { at } : null,
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
      const { toolCallId } = event.payload;
      const next = { ...state, messageCount: state.messageCount + 1 };
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

/**
 * The rows one reduced event adds: an input's content waits under its offset; a message the
 * reducer counted (turn input, model reply, tool result) becomes transcript row
 * `previous.messageCount`; inputs dropped from the queue unanswered (cancel, delete) are
 * forgotten. Runs in the transaction that commits the state.
 */
export function projectAgent(
  tables: ProcessorTables,
  event: SessionEvent,
  previous: AgentState,
  state: AgentState,
): void {
  const at = event.offset;
  if (event.type === "session/input-added" && state.queue.length > previous.queue.length) {
    writeText(tables, inputKey(at), event.payload.content);
  }
  if (state.messageCount > previous.messageCount) {
    const seq = previous.messageCount;
    switch (event.type) {
      case "turn/started": {
        const queued = previous.queue.find((q) => q.messageId === event.payload.messageId);
        const inputOffset = event.payload.inputOffset ?? queued?.offset;
        // Old turn/started events embed the input (inline or by ref); new ones name its offset.
        const embedded = event.payload.content !== undefined || event.payload.contentRef;
        const contentRef = embedded ? event.payload.contentRef : queued?.contentRef;
        const from = !embedded && inputOffset !== undefined ? inputKey(inputOffset) : undefined;
        writeMessage(
          tables,
          seq,
          at,
          {
            role: "user",
            content: event.payload.content ?? "",
            ...refField("contentRef", contentRef),
          },
          from,
        );
        if (from === undefined && inputOffset !== undefined)
          deleteText(tables, inputKey(inputOffset));
        break;
      }
      case "model/request-completed":
        writeMessage(tables, seq, at, {
          role: "assistant",
          content: event.payload.text,
          ...refField("contentRef", event.payload.textRef),
          toolCalls: event.payload.toolCalls,
        });
        break;
      case "tool/call-completed":
        writeMessage(tables, seq, at, {
          role: "tool",
          toolCallId: event.payload.toolCallId,
          toolName: event.payload.toolName,
          result: event.payload.result,
          ...refField("resultRef", event.payload.resultRef),
          isError: event.payload.isError,
        });
        break;
      default:
        throw new Error(`agent counted a message for ${event.type}, which adds none`);
    }
  }
  const kept = new Set(state.queue.map((q) => q.offset));
  for (const q of previous.queue) {
    if (
      !kept.has(q.offset) &&
      !(event.type === "turn/started" && q.messageId === event.payload.messageId)
    )
      deleteText(tables, inputKey(q.offset));
  }
}

function refField<K extends string>(
  key: K,
  ref: ContentRef | undefined,
): { [P in K]?: ContentRef } {
  return (ref ? { [key]: ref } : {}) as { [P in K]?: ContentRef };
}

const legacyStateSchema = z.looseObject({
  messages: z.array(chatMessageSchema),
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
});

/**
 * Agent state written before issue 9 kept the whole conversation (`messages`) and the queued
 * inputs' content in state. It is upgraded on first read: messages become transcript rows,
 * queued content becomes text rows, and the state keeps only their count and offsets.
 */
export function upgradeAgentState(stored: unknown): StateUpgrade | null {
  if (typeof stored !== "object" || stored === null || !("messages" in stored)) return null;
  const legacy = legacyStateSchema.parse(stored);
  const { messages, queue, ...rest } = legacy;
  const turn = rest.turn as { completion?: { at: number } | null } | null | undefined;
  const state = {
    ...rest,
    messageCount: messages.length,
    queue: queue.map((q) => ({
      messageId: q.messageId,
      offset: q.offset,
      ...refField("contentRef", q.contentRef),
    })),
    ...(turn
      ? { turn: { ...turn, completion: turn.completion ? { at: turn.completion.at } : null } }
      : {}),
  };
  return {
    state,
    write(tables) {
      messages.forEach((message: ChatMessage, seq) => {
        writeMessage(tables, seq, 0, message);
      });
      for (const q of queue) writeText(tables, inputKey(q.offset), q.content);
    },
  };
}
