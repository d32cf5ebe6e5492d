/**
 * The conversation as rows, not state: one `messages` row per message (its index `seq`, the
 * offset of the event that added it, role, metadata, size) and its content in `texts` rows of
 * at most CHUNK_CHARS each (a Durable Object SQLite row holds ~2 MB; content is always bound
 * as a parameter, never spliced into SQL text). Pending inputs keep their content in `texts`
 * too (key `i:<offset>`) until their turn starts and it becomes a message (key `m:<seq>`).
 * A `texts` key names any content, so a message can later be fed from chunked content events.
 *
 * The agent processor owns these tables (ProcessorHost `tables` + `project`), so they commit
 * with its state and checkpoint. Reading is by range, so the cost of a prompt follows its
 * window, not the history.
 */
import type { ProcessorTables } from "../processors/processor";
import type { JsonValue } from "../streams/messages";
import type { ContentRef } from "./content";
import { type ChatMessage, chatMessageSchema } from "./events";

/** At most 3 UTF-8 bytes per UTF-16 unit: 256 Ki units stay under 800 KB per row. */
export const CHUNK_CHARS = 256 * 1024;

export const transcriptTables = {
  messages:
    "seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, role TEXT NOT NULL, meta TEXT NOT NULL, bytes INTEGER NOT NULL",
  texts: "key TEXT NOT NULL, idx INTEGER NOT NULL, text TEXT NOT NULL, PRIMARY KEY (key, idx)",
} as const;

/** Splits text into pieces of at most `size` UTF-16 units, never inside a surrogate pair. */
export function chunkText(text: string, size = CHUNK_CHARS): string[] {
  if (text.length <= size) return [text];
  const out: string[] = [];
  for (let start = 0; start < text.length; ) {
    let end = Math.min(text.length, start + size);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end -= 1;
    out.push(text.slice(start, end));
    start = end;
  }
  return out;
}

const encoder = new TextEncoder();
export const byteLength = (text: string) => encoder.encode(text).byteLength;

export function writeText(tables: ProcessorTables, key: string, text: string): void {
  const name = tables.name("texts");
  tables.exec(`DELETE FROM ${name} WHERE key = ?`, key);
  chunkText(text).forEach((piece, idx) => {
    tables.exec(`INSERT INTO ${name} (key, idx, text) VALUES (?, ?, ?)`, key, idx, piece);
  });
}

export function readText(tables: ProcessorTables, key: string): string | null {
  const rows = tables
    .exec<{ text: string }>(
      `SELECT text FROM ${tables.name("texts")} WHERE key = ? ORDER BY idx`,
      key,
    )
    .toArray();
  return rows.length === 0 ? null : rows.map((r) => r.text).join("");
}

/**
 * Moves the text under `from` to `to` (replacing what `to` held) in one UPDATE, which answers
 * the size of what it moved: its UTF-8 bytes, or null when `from` held nothing.
 */
export function moveText(tables: ProcessorTables, from: string, to: string): number | null {
  const name = tables.name("texts");
  tables.exec(`DELETE FROM ${name} WHERE key = ?`, to);
  const moved = tables
    .exec<{ bytes: number }>(
      `UPDATE ${name} SET key = ? WHERE key = ? RETURNING length(CAST(text AS BLOB)) AS bytes`,
      to,
      from,
    )
    .toArray();
  return moved.length === 0 ? null : moved.reduce((sum, row) => sum + row.bytes, 0);
}

export const inputKey = (offset: number) => `i:${offset}`;
/** Zero-padded, so a range of messages is a range of keys. */
const messageKey = (seq: number) => `m:${String(seq).padStart(12, "0")}`;

/**
 * The text a message is stored as: its content, or a tool result's JSON. Content held in
 * chunk events (content.ts) is not copied into rows: the row keeps the ref in `meta` and the
 * prompt builder reads the chunks (bounded by its per-message cap).
 */
function contentOf(message: ChatMessage): string {
  if (refOf(message)) return "";
  return message.role === "tool" ? JSON.stringify(message.result) : message.content;
}

function refOf(message: ChatMessage): ContentRef | undefined {
  return message.role === "tool" ? message.resultRef : message.contentRef;
}

function metaOf(message: ChatMessage): Record<string, unknown> {
  if (message.role === "assistant")
    return {
      toolCalls: message.toolCalls,
      ...(message.contentRef ? { contentRef: message.contentRef } : {}),
    };
  if (message.role === "tool")
    return {
      toolCallId: message.toolCallId,
      toolName: message.toolName,
      isError: message.isError,
      ...(message.resultRef ? { resultRef: message.resultRef } : {}),
    };
  return message.contentRef ? { contentRef: message.contentRef } : {};
}

/** A message whose content is in chunk events: its size is the ref's (compaction plans by it). */
function writeRefMessage(
  tables: ProcessorTables,
  seq: number,
  ref: ContentRef,
  contentFrom: string | undefined,
): number {
  if (contentFrom !== undefined) deleteText(tables, contentFrom);
  writeText(tables, messageKey(seq), "");
  return ref.bytes;
}

function writeContent(tables: ProcessorTables, seq: number, message: ChatMessage): number {
  const content = contentOf(message);
  writeText(tables, messageKey(seq), content);
  return byteLength(content);
}

/** Writes message `seq`. Its content comes from `message`, or from an existing text key. */
export function writeMessage(
  tables: ProcessorTables,
  seq: number,
  at: number,
  message: ChatMessage,
  contentFrom?: string,
): void {
  const ref = refOf(message);
  const bytes = ref
    ? writeRefMessage(tables, seq, ref, contentFrom)
    : ((contentFrom !== undefined ? moveText(tables, contentFrom, messageKey(seq)) : null) ??
      writeContent(tables, seq, message));
  tables.exec(
    `INSERT OR REPLACE INTO ${tables.name("messages")} (seq, at, role, meta, bytes) VALUES (?, ?, ?, ?, ?)`,
    seq,
    at,
    message.role,
    JSON.stringify(metaOf(message)),
    bytes,
  );
}

interface MessageRow extends Record<string, SqlStorageValue> {
  seq: number;
  at: number;
  role: string;
  meta: string;
  bytes: number;
}

function toMessage(row: MessageRow, content: string): ChatMessage {
  const meta = JSON.parse(row.meta) as Record<string, unknown>;
  const raw =
    row.role === "tool"
      ? {
          role: "tool",
          ...meta,
          result: meta.resultRef !== undefined ? null : (JSON.parse(content) as JsonValue),
        }
      : { role: row.role, content, ...meta };
  const parsed = chatMessageSchema.safeParse(raw);
  if (!parsed.success)
    throw new Error(`transcript message ${row.seq} is invalid: ${parsed.error.message}`);
  return parsed.data;
}

export interface StoredMessage {
  index: number;
  at: number;
  bytes: number;
  message: ChatMessage;
}

/** Messages with `from <= seq < to`, in order. */
export function readMessages(tables: ProcessorTables, from: number, to: number): StoredMessage[] {
  if (to <= from) return [];
  const rows = tables
    .exec<MessageRow>(
      `SELECT seq, at, role, meta, bytes FROM ${tables.name("messages")} WHERE seq >= ? AND seq < ? ORDER BY seq`,
      from,
      to,
    )
    .toArray();
  const texts = new Map<number, string[]>();
  for (const t of tables
    .exec<{ key: string; text: string }>(
      `SELECT key, text FROM ${tables.name("texts")} WHERE key >= ? AND key < ? ORDER BY key, idx`,
      messageKey(from),
      messageKey(to),
    )
    .toArray()) {
    const seq = Number(t.key.slice(2));
    const list = texts.get(seq) ?? [];
    list.push(t.text);
    texts.set(seq, list);
  }
  return rows.map((row) => ({
    index: row.seq,
    at: row.at,
    bytes: row.bytes,
    message: toMessage(row, (texts.get(row.seq) ?? []).join("")),
  }));
}

/** Sizes of the messages `from <= seq < to` (cheap: no content is read). */
export function messageSizes(
  tables: ProcessorTables,
  from: number,
  to: number,
): { index: number; role: string; bytes: number }[] {
  return tables
    .exec<{ seq: number; role: string; bytes: number }>(
      `SELECT seq, role, bytes FROM ${tables.name("messages")} WHERE seq >= ? AND seq < ? ORDER BY seq`,
      from,
      to,
    )
    .toArray()
    .map((r) => ({ index: r.seq, role: r.role, bytes: r.bytes }));
}

export function messageCount(tables: ProcessorTables): number {
  return tables.exec<{ n: number }>(`SELECT count(*) AS n FROM ${tables.name("messages")}`).one().n;
}

export function deleteText(tables: ProcessorTables, key: string): void {
  tables.exec(`DELETE FROM ${tables.name("texts")} WHERE key = ?`, key);
}
