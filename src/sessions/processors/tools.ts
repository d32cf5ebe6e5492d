/**
 * The tool processor: approval gating and execution. Each requested call is tracked in state
 * (needs-approval → awaiting → approved | denied → done, or cancelled with its turn). After
 * every batch it asks for approvals that are owed and runs approved calls. Execution goes
 * through a per-call row in the session's SQLite (tool_executions), so a tool runs at most
 * once per tool call id whatever is redelivered or restarted; a synchronous tool's effect
 * and its recorded result commit in one transaction, so it runs exactly once.
 *
 * State holds only the calls in progress; a call that completes or is cancelled moves to the
 * processor's `decided` table (projected in the same transaction), so state does not grow
 * with the number of calls the session ever made, and a late decision still gets its answer.
 */
import type { StateOf, TypedEvent } from "../../processors/contract";
import {
  type BatchHookArgs,
  type ProcessorTables,
  type ProjectArgs,
  type StateUpgrade,
  StreamProcessor,
} from "../../processors/processor";
import type { JsonValue } from "../../streams/messages";
import { toolsContract } from "../contracts";
import type { ToolRegistry } from "../tools/define";

type Call = StateOf<typeof toolsContract>["calls"][string];
type Outcome = { result: JsonValue; isError: boolean };

const SCHEMA = `CREATE TABLE IF NOT EXISTS tool_executions (
  tool_call_id TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  result TEXT,
  is_error INTEGER
)`;

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
    const calls = { ...state.calls };
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
    return { ...state, calls };
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
              ? await this.#executeOnce(toolCallId, call)
              : {
                  result: { error: `tool ${call.toolName} is not enabled for this session` },
                  isError: true,
                };
        await this.blockProcessorWhile(
          this.append({
            type: "tool/call-completed",
            payload: { toolCallId, toolName: call.toolName, ...outcome },
            key: `completed-${toolCallId}`,
            causeOffset: call.decision?.at ?? call.causeAt,
          }),
        );
      }
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
    if (row?.status === "done")
      return { result: JSON.parse(row.result ?? "null") as JsonValue, isError: row.is_error === 1 };
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
    try {
      return this.#record(toolCallId, { result: await pending!, isError: false });
    } catch (error) {
      return this.#record(toolCallId, {
        result: { error: String((error as Error)?.message ?? error) },
        isError: true,
      });
    }
  }

  #record(toolCallId: string, outcome: Outcome): Outcome {
    this.runtime.storage.sql.exec(
      `INSERT INTO tool_executions (tool_call_id, status, result, is_error) VALUES (?, 'done', ?, ?)
       ON CONFLICT (tool_call_id) DO UPDATE SET status = 'done', result = excluded.result, is_error = excluded.is_error`,
      toolCallId,
      JSON.stringify(outcome.result),
      outcome.isError ? 1 : 0,
    );
    return outcome;
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
