/**
 * The tool processor: approval gating and execution. Each requested call is tracked in state
 * (needs-approval → awaiting → approved | denied → done, or cancelled with its turn). After
 * every batch it asks for approvals that are owed and runs approved calls. Execution goes
 * through a per-call row in the session's SQLite (tool_executions), so a tool runs at most
 * once per tool call id whatever is redelivered or restarted; a synchronous tool's effect
 * and its recorded result commit in one transaction, so it runs exactly once (that ledger is
 * tool-executions.ts).
 *
 * Large results: a result whose JSON exceeds the inline limit is appended as chunk events
 * before `tool/call-completed`, which then carries `resultRef` (content.ts); in the session's
 * SQLite it is kept in row-sized pieces (tool_result_chunks), since one row holds ~2 MB at
 * most. A result over MAX_TOOL_RESULT_BYTES, or one the stream refuses, becomes an error
 * result the model sees: the call always completes, nothing retries in silence.
 *
 * State holds only the calls in progress; a call that completes or is cancelled moves to the
 * processor's `decided` table (projected in the same transaction), so state does not grow
 * with the number of calls the session ever made, and a late decision still gets its answer.
 */

import { DomainError, isFault } from "../../errors/domain";
import type { StateOf } from "../../processors/contract";
import {
  type BatchHookArgs,
  type EventHookArgs,
  type ProcessorTables,
  type ProjectArgs,
  type ReduceArgs,
  type StateUpgrade,
  StreamProcessor,
} from "../../processors/processor";
import type { JsonValue } from "../../streams/messages";
import { CHUNK_EVENT, type ContentRef, needsChunks, storeContent } from "../content";
import { toolsContract } from "../contracts";
import type { ToolRegistry } from "../tools/define";
import { type Outcome, ToolExecutions } from "./tool-executions";

type Call = StateOf<typeof toolsContract>["calls"][string];

export interface ToolRuntime {
  storage: DurableObjectStorage;
  sessionId(): string;
}

/** A call that is no longer in progress, as the `decided` table keeps it. */
export interface FinishedCall {
  status: "done" | "cancelled";
  decision: { approved: boolean; reason: string | null } | null;
}

export class ToolProcessor extends StreamProcessor<typeof toolsContract> {
  readonly contract = toolsContract;
  override readonly tables = {
    decided:
      "tool_call_id TEXT PRIMARY KEY, tool_name TEXT NOT NULL, status TEXT NOT NULL, approved INTEGER, reason TEXT, at INTEGER NOT NULL",
  };

  readonly #executions: ToolExecutions;

  constructor(
    readonly registry: ToolRegistry,
    private readonly runtime: ToolRuntime,
  ) {
    super();
    this.#executions = new ToolExecutions(registry, runtime);
  }

  reduce({ state, event }: ReduceArgs<typeof toolsContract>) {
    if (event.type === "session/created") return { ...state, enabled: event.payload.tools };
    // Keys are tool call ids chosen by the model: a null-prototype copy and own-key lookups, so
    // that `constructor` or `toString` is a call like any other, never Object.prototype's.
    const calls: Record<string, Call> = Object.assign(Object.create(null), state.calls);
    const update = (id: string, change: (call: Call) => Call | null) => {
      if (!Object.hasOwn(calls, id)) return;
      const next = change(calls[id]!);
      if (next) calls[id] = next;
      else delete calls[id];
    };
    switch (event.type) {
      case "tool/call-requested":
        if (Object.hasOwn(calls, event.payload.toolCallId)) break;
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
        update(event.payload.toolCallId, () => null);
        break;
      case "turn/cancelled":
        for (const [id, call] of Object.entries(calls))
          if (call.turnId === event.payload.turnId) delete calls[id];
        break;
      case "session/deleted":
        for (const id of Object.keys(calls)) delete calls[id];
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

  /** Calls that left state (completed or cancelled) become rows of `decided`. */
  override project({ event, previousState, state, tables }: ProjectArgs<typeof toolsContract>) {
    for (const [id, call] of Object.entries(previousState.calls)) {
      if (Object.hasOwn(state.calls, id)) continue;
      tables.exec(
        `INSERT OR REPLACE INTO ${tables.name("decided")} (tool_call_id, tool_name, status, approved, reason, at) VALUES (?, ?, ?, ?, ?, ?)`,
        id,
        call.toolName,
        event.type === "tool/call-completed" ? "done" : "cancelled",
        call.decision === null ? null : call.decision.approved ? 1 : 0,
        call.decision?.reason ?? null,
        event.offset,
      );
    }
  }

  /**
   * Tools state written before issue 9 kept every call forever; finished calls (done,
   * cancelled) move to `decided` rows on first read.
   */
  override upgradeState(stored: unknown): StateUpgrade | null {
    const parsed = this.contract.state.safeParse(stored);
    if (!parsed.success) return null;
    const finished = Object.entries(parsed.data.calls).filter(
      ([, c]) => c.status === "done" || c.status === "cancelled",
    );
    if (finished.length === 0) return null;
    const calls = { ...parsed.data.calls };
    for (const [id] of finished) delete calls[id];
    return {
      state: { ...parsed.data, calls },
      write: (tables) => {
        for (const [id, call] of finished)
          tables.exec(
            `INSERT OR REPLACE INTO ${tables.name("decided")} (tool_call_id, tool_name, status, approved, reason, at) VALUES (?, ?, ?, ?, ?, ?)`,
            id,
            call.toolName,
            call.status,
            call.decision === null ? null : call.decision.approved ? 1 : 0,
            call.decision?.reason ?? null,
            call.decision?.at ?? call.causeAt,
          );
      },
    };
  }

  /** A call that is no longer in progress, or null if there is none by that id. */
  static finished(tables: ProcessorTables, toolCallId: string): FinishedCall | null {
    const row = tables
      .exec<{ status: string; approved: number | null; reason: string | null }>(
        `SELECT status, approved, reason FROM ${tables.name("decided")} WHERE tool_call_id = ?`,
        toolCallId,
      )
      .toArray()[0];
    if (!row) return null;
    if (row.status !== "done" && row.status !== "cancelled")
      throw new Error(`decided call ${toolCallId} has an invalid status ${row.status}`);
    return {
      status: row.status,
      decision: row.approved === null ? null : { approved: row.approved === 1, reason: row.reason },
    };
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
              ? await this.#executions.runOnce(toolCallId, call)
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
      if (!(error instanceof DomainError) || isFault(error.code)) throw error;
      return completed({
        result: { error: `the result of ${call.toolName} could not be stored: ${error.message}` },
        isError: true,
      });
    }
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
