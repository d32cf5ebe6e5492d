/** The built-in tools every session can use. Notes live in the session's own storage. */
import { z } from "zod";
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

export const builtinTools = new ToolRegistry([echo, clockNow, notesWrite, notesRead] as never[]);
