/**
 * The ledger that makes a tool run at most once per tool call id: a row per call in the
 * session's SQLite (tool_executions) is claimed before the tool runs and holds its outcome
 * after. A synchronous tool's effect and its recorded result commit in one transaction (so
 * it runs exactly once); an asynchronous one found `running` after a restart is reported as
 * interrupted, never run again. A result larger than a row is kept in row-sized pieces
 * (tool_result_chunks); one over MAX_TOOL_RESULT_BYTES becomes an error result.
 */
import type { JsonValue } from "../../streams/messages";
import { MAX_TOOL_RESULT_BYTES, splitText, utf8Bytes } from "../content";
import type { ToolRegistry } from "../tools/define";
import type { ToolRuntime } from "./tools";

export type Outcome = { result: JsonValue; isError: boolean };

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

export class ToolExecutions {
  constructor(
    private readonly registry: ToolRegistry,
    private readonly runtime: ToolRuntime,
  ) {
    runtime.storage.sql.exec(SCHEMA);
  }

  /** Runs the call at most once; a repeat answers the recorded outcome. */
  async runOnce(toolCallId: string, call: { toolName: string; input: string }): Promise<Outcome> {
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
        const value = tool.execute(parsed.input, context);
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
