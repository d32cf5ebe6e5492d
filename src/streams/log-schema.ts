/**
 * The stream's SQLite schema and its rows as typed records: every row is validated when it
 * is read back (a corrupt row is an error, never a wrong answer). The operations on these
 * tables are log.ts.
 */
import { z } from "zod";
import { corruptRecord } from "../errors/domain";

export type CloseStatus = "ended" | "failed";

export const metaRowSchema = z.object({
  id: z.string(),
  name: z.string(),
  path: z.string(),
  content_type: z.string(),
  created_at: z.number(),
  tail: z.number().int().nonnegative(),
  ttl_seconds: z.number().int().nonnegative().nullable(),
  expires_at: z.number().nullable(),
  closed_at: z.number().nullable(),
  close_status: z.enum(["ended", "failed"]).nullable(),
  close_reason: z.string().nullable(),
  last_stream_seq: z.string().nullable(),
  forked_from: z.string().nullable(),
  fork_offset: z.string().nullable(),
  fork_sub_offset: z.number().int().nonnegative().nullable(),
  soft_deleted: z.number().int(),
  fork_refs: z.number().int().nonnegative(),
});
export type StreamMeta = z.infer<typeof metaRowSchema>;

export const producerRowSchema = z.object({
  epoch: z.number().int().nonnegative(),
  last_seq: z.number().int(),
});

/**
 * Message rows are validated on every read. This is the hot path of catch-up reads
 * (hundreds of thousands of rows a second), so it is a hand-written check, not zod.
 */
export function toStoredMessage(row: Record<string, SqlStorageValue>): StoredMessage {
  const { offset, append_start, type, idempotency_key, body, created_at } = row;
  if (
    typeof offset !== "number" ||
    typeof append_start !== "number" ||
    (type !== null && typeof type !== "string") ||
    (idempotency_key !== null && typeof idempotency_key !== "string") ||
    (typeof body !== "string" && !(body instanceof ArrayBuffer)) ||
    typeof created_at !== "number"
  ) {
    throw corruptRecord(`stored message ${String(offset)}`, "a column has the wrong type");
  }
  return {
    offset,
    appendStart: append_start,
    type,
    idempotencyKey: idempotency_key,
    body,
    createdAt: created_at,
  };
}

/** A stored message as it is read back (validated) and copied into forks. */
export interface StoredMessage {
  offset: number;
  appendStart: number;
  type: string | null;
  idempotencyKey: string | null;
  body: string | ArrayBuffer;
  createdAt: number;
}

export type PageMessage = Pick<StoredMessage, "offset" | "body" | "createdAt">;

export interface NewStream {
  id: string;
  name: string;
  path: string;
  contentType: string;
  ttlSeconds: number | null;
  expiresAt: number | null;
  fork: { source: string; offset: string | null; subOffset: number } | null;
}

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS stream_meta (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  id TEXT NOT NULL,
  name TEXT NOT NULL,
  path TEXT NOT NULL,
  content_type TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  tail INTEGER NOT NULL DEFAULT 0,
  ttl_seconds INTEGER,
  expires_at INTEGER,
  closed_at INTEGER,
  close_status TEXT,
  close_reason TEXT,
  last_stream_seq TEXT,
  forked_from TEXT,
  fork_offset TEXT,
  fork_sub_offset INTEGER,
  soft_deleted INTEGER NOT NULL DEFAULT 0,
  fork_refs INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS stream_messages (
  offset INTEGER PRIMARY KEY,
  append_start INTEGER NOT NULL,
  type TEXT,
  idempotency_key TEXT,
  body BLOB NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS stream_messages_idempotency
  ON stream_messages (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS stream_producers (
  producer_id TEXT PRIMARY KEY,
  epoch INTEGER NOT NULL,
  last_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS stream_forks (fork_name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS stream_outbox (
  source_name TEXT NOT NULL,
  fork_name TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (source_name, fork_name)
);
`;
