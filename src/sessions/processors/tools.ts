/**
 * The tool processor: approval gating and execution. Each requested call is tracked in state
 * (needs-approval → awaiting → approved | denied → done, or cancelled with its turn). After
 * every batch it asks for approvals that are owed and runs approved calls. Execution goes
 * through a per-call row in the session's SQLite (tool_executions), so a tool runs at most
 * once per tool call id whatever is redelivered or restarted; a synchronous tool's effect
 * and its recorded result commit in one transaction, so it runs exactly once.
 *
 * Large results: a result whose JSON exceeds the inline limit is appended as chunk events
 * before `tool/call-completed`, which then carries `resultRef` (content.ts); in the session's
 * SQLite it is kept in row-sized pieces (tool_result_chunks), since one row holds ~2 MB at
 * most. A result over MAX_TOOL_RESULT_BYTES, or one the stream refuses, becomes an error
 * result the model sees: the call always completes, nothing retries in silence.
 */

import { ApiError } from "../../http/errors";
import type { StateOf, TypedEvent } from "../../processors/contract";
import {
  type BatchHookArgs,
  type EventHookArgs,
  StreamProcessor,
} from "../../processors/processor";
import type { JsonValue } from "../../streams/messages";
import {
  CHUNK_EVENT,
  type ContentRef,
  MAX_TOOL_RESULT_BYTES,
  needsChunks,
  splitText,
  storeContent,
  utf8Bytes,
} from "../content";
import { toolsContract } from "../contracts";
import type { ToolRegistry } from "../tools/define";

type Call = StateOf<typeof toolsContract>["calls"][string];
type Outcome = { result: JsonValue; isError: boolean };

const SCHEMA = `CREATE TABLE IF NOT EXISTS tool_executions (
  tool_call_id TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  result TEXT,
  is_error INTEGER
);
CREATE TABLE IF NOT EXISTS tool_result_chunks (
  tool_call_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  text TEXT NOT NULL,
  PRIMARY KEY (tool_call_id, idx)
)`;
/** A stored result larger than this is kept in several rows of tool_result_chunks. */
const ROW_TEXT_BYTES = 512 * 1024;

export interface ToolRuntime {
  storage: DurableObjectStorage;
  sessionId(): string;
}

export class ToolProcessor extends StreamProcessor<typeof toolsContract> {
  readonly contract = toolsContract;

  constructor(
    private readonly registry: ToolRegistry,
    private readonly runtime: ToolRuntime,
  ) {
    super();
    runtime.storage.sql.exec(SCHEMA);
  }

  reduce({
    state,
    event,
  }: {
    state: StateOf<typeof toolsContract>;
    event: TypedEvent<typeof toolsContract>;
  }) {
    if (event.type === "session/created") return { ...state, enabled: event.payload.tools };
    // Keys are tool call ids chosen by the model: a null-prototype copy and own-key lookups, so
    // that `constructor` or `toString` is a call like any other, never Object.prototype's.
    const calls: Record<string, Call> = Object.assign(Object.create(null), state.calls);
    const update = (id: string, change: (call: Call) => Call | null) => {
      if (!Object.hasOwn(calls, id)) return;
      const call = calls[id]!;
      const next = change(call);
      if (next) calls[id] = next;
    };
    switch (event.type) {
      case "tool/call-requested":
        if (!Object.hasOwn(calls, event.payload.toolCallId))
          calls[event.payload.toolCallId] = {
            toolName: event.payload.toolName,
            input: event.payload.input,
            turnId: event.payload.turnId,
            status: event.payload.needsApproval ? "needs-approval" : "approved",
            causeAt: event.offset,
            decision: null,
          };
        break;
      case "tool/approval-requested":
        update(event.payload.toolCallId, (c) =>
          c.status === "needs-approval" ? { ...c, status: "awaiting" } : c,
        );
        break;
      case "tool/approval-decided":
        update(event.payload.toolCallId, (c) =>
          c.status === "needs-approval" || c.status === "awaiting"
            ? {
                ...c,
                status: event.payload.approved ? "approved" : "denied",
                decision: {
                  approved: event.payload.approved,
                  reason: event.payload.reason,
                  at: event.offset,
                },
              }
            : c,
        );
        break;
      case "tool/call-completed":
        update(event.payload.toolCallId, (c) => ({ ...c, status: "done" }));
        break;
      case "turn/cancelled":
        for (const [id, call] of Object.entries(calls)) {
          if (call.turnId === event.payload.turnId && call.status !== "done")
            calls[id] = { ...call, status: "cancelled" };
        }
        break;
      case "session/deleted":
        for (const [id, call] of Object.entries(calls))
          if (call.status !== "done") calls[id] = { ...call, status: "cancelled" };
        break;
    }
    return { ...state, calls: { ...calls } };
  }

  /**
   * Once a large result's completion is on the stream, the stream holds it: the pieces kept
   * here (only for a re-run of processBatch before that completion was reduced) are dropped.
   */
  override processEvent({ event }: EventHookArgs<typeof toolsContract>) {
    if (event.type !== "tool/call-completed" || !event.payload.resultRef) return;
    const sql = this.runtime.storage.sql;
    sql.exec("DELETE FROM tool_result_chunks WHERE tool_call_id = ?", event.payload.toolCallId);
    sql.exec(
      "UPDATE tool_executions SET status = 'released', result = NULL WHERE tool_call_id = ?",
      event.payload.toolCallId,
    );
  }

  override async processBatch({ state }: BatchHookArgs<typeof toolsContract>) {
    for (const [toolCallId, call] of Object.entries(state.calls)) {
      if (call.status === "needs-approval") {
        await this.blockProcessorWhile(
          this.append({
            type: "tool/approval-requested",
            payload: { toolCallId, toolName: call.toolName, args: argsForDisplay(call.input) },
            key: `approval-${toolCallId}`,
            causeOffset: call.causeAt,
          }),
        );
      } else if (call.status === "approved" || call.status === "denied") {
        const outcome =
          call.status === "denied"
            ? denied(call)
            : state.enabled.includes(call.toolName)
              ? await this.#executeOnce(toolCallId, call)
              : {
                  result: { error: `tool ${call.toolName} is not enabled for this session` },
                  isError: true,
                };
        await this.blockProcessorWhile(
          this.#complete(toolCallId, call, outcome, call.decision?.at ?? call.causeAt),
        );
      }
    }
  }

  /**
   * Appends the call's completion; a large result goes to chunk events first. If the stream
   * refuses the result (a 4xx), the call completes with an error saying so instead.
   */
  async #complete(toolCallId: string, call: Call, outcome: Outcome, cause: number) {
    const completed = (payload: { result: JsonValue; resultRef?: ContentRef; isError: boolean }) =>
      this.append({
        type: "tool/call-completed",
        payload: { toolCallId, toolName: call.toolName, ...payload },
        key: `completed-${toolCallId}`,
        causeOffset: cause,
      });
    try {
      const json = JSON.stringify(outcome.result) ?? "null";
      if (!needsChunks(json)) return await completed(outcome);
      const resultRef = await storeContent(`${toolCallId}-result`, json, async (chunks) =>
        (
          await this.append(
            ...chunks.map((chunk) => ({
              type: CHUNK_EVENT,
              payload: chunk,
              key: `result-${toolCallId}-chunk-${chunk.index}`,
              causeOffset: cause,
            })),
          )
        ).map((e) => e.offset),
      );
      return await completed({ result: null, resultRef, isError: outcome.isError });
    } catch (error) {
      const known = ApiError.from(error);
      if (!(known instanceof ApiError) || known.status >= 500) throw error;
      return completed({
        result: { error: `the result of ${call.toolName} could not be stored: ${known.message}` },
        isError: true,
      });
    }
  }

  async #executeOnce(toolCallId: string, call: Call): Promise<Outcome> {
    const sql = this.runtime.storage.sql;
    const row = sql
      .exec<{ status: string; result: string | null; is_error: number | null }>(
        "SELECT status, result, is_error FROM tool_executions WHERE tool_call_id = ?",
        toolCallId,
      )
      .toArray()[0];
    if (row?.status === "released") {
      // Its completion is already stored; appending again returns that original (same key).
      return { result: { error: "result already delivered" }, isError: true };
    }
    if (row?.status === "done")
      return {
        result: JSON.parse(row.result ?? this.#storedChunks(toolCallId)) as JsonValue,
        isError: row.is_error === 1,
      };
    if (row?.status === "running") {
      return this.#record(toolCallId, {
        result: {
          error: `${call.toolName} was interrupted while running; its outcome is unknown and it was not run again`,
        },
        isError: true,
      });
    }
    const parsed = this.registry.parseInput(call.toolName, call.input);
    if (!parsed.ok)
      return this.#record(toolCallId, { result: { error: parsed.error }, isError: true });
    const tool = this.registry.get(call.toolName)!;
    const context = { sql, sessionId: this.runtime.sessionId(), toolCallId };
    let pending: Promise<JsonValue> | null = null;
    let outcome: Outcome | null = null;
    try {
      this.runtime.storage.transactionSync(() => {
        sql.exec(
          "INSERT INTO tool_executions (tool_call_id, status) VALUES (?, 'running')",
          toolCallId,
        );
        const value = tool.execute(parsed.input as never, context);
        if (value instanceof Promise) pending = value;
        else outcome = this.#record(toolCallId, { result: value, isError: false });
      });
    } catch (error) {
      // A synchronous failure rolled the transaction back, the tool's own writes included.
      return this.#record(toolCallId, {
        result: { error: String((error as Error)?.message ?? error) },
        isError: true,
      });
    }
    if (outcome) return outcome;
    let settled: Outcome;
    try {
      settled = { result: await pending!, isError: false };
    } catch (error) {
      settled = { result: { error: String((error as Error)?.message ?? error) }, isError: true };
    }
    return this.runtime.storage.transactionSync(() => this.#record(toolCallId, settled));
  }

  /**
   * Records the outcome (inside the caller's transaction). A result over the size limit is
   * replaced by an error result; one larger than a row is stored in row-sized pieces.
   */
  #record(toolCallId: string, given: Outcome): Outcome {
    const sql = this.runtime.storage.sql;
    let outcome = given;
    let json = JSON.stringify(outcome.result) ?? "null";
    if (json.length > MAX_TOOL_RESULT_BYTES / 3 && utf8Bytes(json) > MAX_TOOL_RESULT_BYTES) {
      outcome = {
        result: {
          error: `the result of ${utf8Bytes(json)} bytes exceeds the ${MAX_TOOL_RESULT_BYTES}-byte limit of a tool result`,
        },
        isError: true,
      };
      json = JSON.stringify(outcome.result);
    }
    const pieces = json.length * 3 > ROW_TEXT_BYTES ? splitText(json, ROW_TEXT_BYTES) : [json];
    sql.exec("DELETE FROM tool_result_chunks WHERE tool_call_id = ?", toolCallId);
    if (pieces.length > 1)
      pieces.forEach((text, idx) => {
        sql.exec(
          "INSERT INTO tool_result_chunks (tool_call_id, idx, text) VALUES (?, ?, ?)",
          toolCallId,
          idx,
          text,
        );
      });
    sql.exec(
      `INSERT INTO tool_executions (tool_call_id, status, result, is_error) VALUES (?, 'done', ?, ?)
       ON CONFLICT (tool_call_id) DO UPDATE SET status = 'done', result = excluded.result, is_error = excluded.is_error`,
      toolCallId,
      pieces.length > 1 ? null : json,
      outcome.isError ? 1 : 0,
    );
    return outcome;
  }

  /** A result stored in pieces, joined (a result row without its pieces is corrupt). */
  #storedChunks(toolCallId: string): string {
    const rows = this.runtime.storage.sql
      .exec<{ text: string }>(
        "SELECT text FROM tool_result_chunks WHERE tool_call_id = ? ORDER BY idx",
        toolCallId,
      )
      .toArray();
    if (rows.length === 0) throw new Error(`stored result of tool call ${toolCallId} is missing`);
    return rows.map((r) => r.text).join("");
  }
}

function argsForDisplay(input: string): JsonValue {
  try {
    return JSON.parse(input) as JsonValue;
  } catch {
    return input;
  }
}

function denied(call: Call): Outcome {
  const reason = call.decision?.reason;
  return {
    result: { error: `the user denied this call${reason ? `: ${reason}` : ""}` },
    isError: true,
  };
}
