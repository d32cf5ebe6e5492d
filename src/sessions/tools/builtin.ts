/**
 * The built-in tools every session can use. Notes live in the session's own storage.
 * `blob_make` exists for tests and benchmarks of large tool results; it is not enabled unless
 * a session asks for it by name (DEFAULT_TOOLS leaves it out).
 */
import { z } from "zod";
import { MAX_TOOL_RESULT_BYTES } from "../content";
import { defineTool, ToolRegistry } from "./define";

const NOTES =
  "CREATE TABLE IF NOT EXISTS notes (key TEXT PRIMARY KEY, text TEXT NOT NULL, updated_at INTEGER NOT NULL)";

export const echo = defineTool({
  name: "echo",
  description: "Returns its input text unchanged.",
  input: z.object({ text: z.string().max(10_000) }),
  needsApproval: false,
  execute: ({ text }) => ({ text }),
});

export const clockNow = defineTool({
  name: "clock_now",
  description: "Returns the current time as an ISO-8601 string.",
  input: z.object({}),
  needsApproval: false,
  execute: () => ({ now: new Date().toISOString() }),
});

export const notesWrite = defineTool({
  name: "notes_write",
  description: "Stores a note under a key in the session's notes (needs approval).",
  input: z.object({ key: z.string().min(1).max(200), text: z.string().max(100_000) }),
  needsApproval: true,
  execute: ({ key, text }, { sql }) => {
    sql.exec(NOTES);
    sql.exec(
      "INSERT INTO notes (key, text, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET text = excluded.text, updated_at = excluded.updated_at",
      key,
      text,
      Date.now(),
    );
    return { saved: true, key };
  },
});

export const notesRead = defineTool({
  name: "notes_read",
  description: "Reads the note stored under a key, or null.",
  input: z.object({ key: z.string().min(1).max(200) }),
  needsApproval: false,
  execute: ({ key }, { sql }) => {
    sql.exec(NOTES);
    const row = sql
      .exec<{ text: string }>("SELECT text FROM notes WHERE key = ?", key)
      .toArray()[0];
    return { key, text: row?.text ?? null };
  },
});

const BLOB_PATTERN = "0123456789abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOPQRSTUVWXYZ_";

/** The deterministic text `blob_make` returns for `bytes` (ASCII, so bytes = characters). */
export function blobText(bytes: number): string {
  const whole = BLOB_PATTERN.repeat(Math.floor(bytes / BLOB_PATTERN.length));
  return whole + BLOB_PATTERN.slice(0, bytes - whole.length);
}

/** TEST/BENCH TOOL: returns a string of exactly `bytes` ASCII characters (result JSON: bytes + 2). */
export const blobMake = defineTool({
  name: "blob_make",
  description: "Test tool: returns a deterministic string of the given number of bytes.",
  input: z.object({
    bytes: z
      .number()
      .int()
      .min(0)
      .max(MAX_TOOL_RESULT_BYTES - 2),
  }),
  needsApproval: false,
  execute: ({ bytes }) => blobText(bytes),
});

export const builtinTools = new ToolRegistry([echo, clockNow, notesWrite, notesRead, blobMake]);

/** The tools a session gets when it names none (test-only tools left out). */
export const DEFAULT_TOOLS = ["echo", "clock_now", "notes_write", "notes_read"];
