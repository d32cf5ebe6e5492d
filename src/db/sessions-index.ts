/**
 * The session index in D1: one row per session, a projection of the session's stream kept
 * by the index processor. Writes are idempotent upserts guarded by the stream offset the
 * row reflects, so a replayed or late delivery can never move a row backwards; the whole
 * table can be dropped and rebuilt by replaying the streams (README, "Rebuilding the index").
 */
import { and, desc, eq, lt, or, sql } from "drizzle-orm";
import { z } from "zod";
import { invalidInput } from "../errors/domain";
import { parseWith } from "../errors/parse";
import { fromBase64Url, toBase64Url } from "../secrets";
import { SESSION_STATUSES } from "../sessions/events";
import type { Db } from "./client";
import { sessions } from "./schema";

/**
 * The statuses a row of the index can have: the session lifecycle (sessions/events.ts) except
 * `deleted`, since a deleted session's row is removed rather than kept.
 */
export const indexedStatusSchema = z.enum(SESSION_STATUSES).exclude(["deleted"]);
export type IndexedStatus = z.infer<typeof indexedStatusSchema>;

const ms = z.number().int().nonnegative();

export const sessionRowSchema = z.object({
  id: z.string().min(1).max(200),
  tenantId: z.string().min(1).max(200),
  title: z.string().max(200),
  status: indexedStatusSchema,
  model: z.string().max(200),
  createdAt: ms,
  updatedAt: ms,
  lastOffset: z.number().int().nonnegative(),
  pendingApprovalCount: z.number().int().nonnegative(),
  lastError: z.string().nullable(),
});
export type SessionIndexRow = z.infer<typeof sessionRowSchema>;

export const MAX_LIST_LIMIT = 100;

/**
 * The upsert below as a drizzle prepared query: its SQL is built once per client (the index
 * processor writes a row a couple of times per turn), only the values change per call.
 */
function prepareUpsert(db: Db) {
  const value = (name: keyof SessionIndexRow) => sql.placeholder(name);
  return db
    .insert(sessions)
    .values({
      id: value("id"),
      tenantId: value("tenantId"),
      title: value("title"),
      status: value("status"),
      model: value("model"),
      createdAt: value("createdAt"),
      updatedAt: value("updatedAt"),
      lastOffset: value("lastOffset"),
      pendingApprovalCount: value("pendingApprovalCount"),
      lastError: value("lastError"),
    })
    .onConflictDoUpdate({
      target: [sessions.tenantId, sessions.id],
      set: {
        title: sql`excluded.title`,
        status: sql`excluded.status`,
        model: sql`excluded.model`,
        updatedAt: sql`excluded.updated_at`,
        lastOffset: sql`excluded.last_offset`,
        pendingApprovalCount: sql`excluded.pending_approvals`,
        lastError: sql`excluded.last_error`,
      },
      setWhere: sql`excluded.last_offset >= ${sessions.lastOffset}`,
    })
    .returning({ id: sessions.id })
    .prepare();
}

const upserts = new WeakMap<Db, ReturnType<typeof prepareUpsert>>();

/**
 * Inserts the row, or updates it when the incoming `lastOffset` is at least the stored one.
 * `createdAt` is kept from the first insert. Returns whether the row was written.
 */
export async function upsertSessionRow(db: Db, row: SessionIndexRow): Promise<boolean> {
  const value = sessionRowSchema.parse(row);
  let upsert = upserts.get(db);
  if (upsert === undefined) {
    upsert = prepareUpsert(db);
    upserts.set(db, upsert);
  }
  const written = await upsert.all(value);
  return written.length > 0;
}

export async function getSessionRow(
  db: Db,
  tenantId: string,
  id: string,
): Promise<SessionIndexRow | null> {
  const row = await db
    .select()
    .from(sessions)
    .where(and(eq(sessions.tenantId, tenantId), eq(sessions.id, id)))
    .get();
  return row ? sessionRowSchema.parse(row) : null;
}

export interface ListOptions {
  status?: IndexedStatus;
  limit: number;
  /** The `nextCursor` of the previous page. */
  cursor?: string;
}

export interface SessionPage {
  sessions: SessionIndexRow[];
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

interface Cursor {
  createdAt: number;
  id: string;
}

const encoder = new TextEncoder();

export function encodeCursor(cursor: Cursor): string {
  return toBase64Url(encoder.encode(`${cursor.createdAt}:${cursor.id}`));
}

/** Parses an opaque cursor; anything that is not one of ours is a 400. */
export function decodeCursor(text: string): Cursor {
  const invalid = () => invalidInput("invalid cursor", undefined, "bad_request");
  if (text.length === 0 || text.length > 400) throw invalid();
  const bytes = fromBase64Url(text);
  if (!bytes) throw invalid();
  let decoded: string;
  try {
    decoded = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw invalid();
  }
  const match = /^(\d{1,16}):(.{1,200})$/s.exec(decoded);
  if (!match) throw invalid();
  const createdAt = Number(match[1]);
  if (!Number.isSafeInteger(createdAt)) throw invalid();
  return { createdAt, id: match[2]! };
}

/** A tenant's sessions, newest first (ties broken by id, descending), one page at a time. */
export async function listSessionRows(
  db: Db,
  tenantId: string,
  options: ListOptions,
): Promise<SessionPage> {
  const limit = options.limit;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw invalidInput(`limit must be an integer from 1 to ${MAX_LIST_LIMIT}`);
  }
  const status =
    options.status === undefined
      ? undefined
      : parseWith(indexedStatusSchema, options.status, "status");
  const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
  const rows = await db
    .select()
    .from(sessions)
    .where(
      and(
        eq(sessions.tenantId, tenantId),
        status === undefined ? undefined : eq(sessions.status, status),
        after === undefined
          ? undefined
          : or(
              lt(sessions.createdAt, after.createdAt),
              and(eq(sessions.createdAt, after.createdAt), lt(sessions.id, after.id)),
            ),
      ),
    )
    .orderBy(desc(sessions.createdAt), desc(sessions.id))
    .limit(limit + 1)
    .all();
  const page = rows.slice(0, limit).map((row) => sessionRowSchema.parse(row));
  const last = page.at(-1);
  return {
    sessions: page,
    nextCursor: rows.length > limit && last ? encodeCursor(last) : null,
  };
}

/** Removes a session's row; returns whether there was one. */
export async function deleteSessionRow(db: Db, tenantId: string, id: string): Promise<boolean> {
  const deleted = await db
    .delete(sessions)
    .where(and(eq(sessions.tenantId, tenantId), eq(sessions.id, id)))
    .returning({ id: sessions.id });
  return deleted.length > 0;
}
