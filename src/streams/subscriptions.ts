/**
 * The subscription table: a projection of the stream's `stream/subscription-*` events, plus
 * each subscription's delivery state (durable cursor, health, retry schedule). The reducer
 * runs inside the append transaction that commits the event, so the table and the log never
 * disagree. Webhook secrets live here too (never in the log, which readers can see).
 *
 * Health: `active` → (a failure) `failing` → (too many failures) `parked`. A parked row keeps
 * the offsets it is stuck on and gets no delivery until an operator resumes or skips it; the
 * state is a column like the cursor, so it survives eviction.
 */
import { z } from "zod";
import { type Callable, callableKey, callableSchema } from "../callables/descriptor";
import { corruptRecord } from "../errors/domain";
import { issueText } from "../errors/parse";
import { type StartAt, type SubscriptionConfigured, startAtSchema } from "./system-events";

export type SubscriptionHealth = "active" | "failing" | "parked";

export interface Subscription {
  key: string;
  callable: Callable;
  eventTypes: string[];
  startAt: StartAt;
  /** Offset of the configuring event: events at or below it fire no side effects. */
  anchorOffset: number;
  /** Every event at or below the cursor has been delivered and acknowledged (or skipped). */
  cursor: number;
  health: SubscriptionHealth;
  attempts: number;
  lastError: string | null;
  lastErrorRetryable: boolean | null;
  nextRetryAt: number | null;
  /** While parked: the first and last event of the batch that kept failing. */
  stuckOffset: number | null;
  stuckThrough: number | null;
  secret: string | null;
}

/**
 * The delivery-state columns, checked on every read. The configuration columns (callable,
 * event types, start) are JSON text validated by `configOf`, once per distinct text: they
 * are read on every commit (deliveries are kicked per commit) but change only on reconfigure.
 */
const rowSchema = z.object({
  key: z.string(),
  callable: z.string(),
  event_types: z.string(),
  start_at: z.string(),
  anchor_offset: z.number().int(),
  cursor: z.number().int().nonnegative(),
  health: z.enum(["active", "failing", "parked"]),
  attempts: z.number().int(),
  last_error: z.string().nullable(),
  last_error_retryable: z.number().nullable(),
  next_retry_at: z.number().nullable(),
  stuck_offset: z.number().int().nullable(),
  stuck_through: z.number().int().nullable(),
  secret: z.string().nullable(),
});

const eventTypesSchema = z.array(z.string());

type Config = Pick<Subscription, "callable" | "eventTypes" | "startAt">;
/** Parsed configurations by their stored text; bounded (cleared when it outgrows the table). */
const CONFIG_CACHE_MAX = 256;
const configCache = new Map<string, Readonly<Config>>();

function configOf(callable: string, eventTypes: string, startAt: string): Readonly<Config> {
  const text = `${callable}\u0000${eventTypes}\u0000${startAt}`;
  const cached = configCache.get(text);
  if (cached) return cached;
  const config: Config = Object.freeze({
    callable: Object.freeze(callableSchema.parse(JSON.parse(callable))),
    eventTypes: Object.freeze(eventTypesSchema.parse(JSON.parse(eventTypes))) as string[],
    startAt: startAtSchema.parse(JSON.parse(startAt)),
  });
  if (configCache.size >= CONFIG_CACHE_MAX) configCache.clear();
  configCache.set(text, config);
  return config;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS stream_subscriptions (
  key TEXT PRIMARY KEY,
  callable TEXT NOT NULL,
  event_types TEXT NOT NULL,
  start_at TEXT NOT NULL,
  anchor_offset INTEGER NOT NULL,
  cursor INTEGER NOT NULL,
  health TEXT NOT NULL DEFAULT 'active',
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  last_error_retryable INTEGER,
  next_retry_at INTEGER,
  secret TEXT,
  stuck_offset INTEGER,
  stuck_through INTEGER
);
`;
/** Columns added after the first release, for tables created before them. */
const ADDED_COLUMNS = ["stuck_offset INTEGER", "stuck_through INTEGER"];

export class SubscriptionTable {
  /** Cached row count: every commit asks whether there is anyone to deliver to. */
  #count: number | undefined;

  constructor(private readonly sql: SqlStorage) {
    sql.exec(SCHEMA);
    const columns = new Set(
      sql
        .exec<{ name: string }>("PRAGMA table_info(stream_subscriptions)")
        .toArray()
        .map((c) => c.name),
    );
    for (const column of ADDED_COLUMNS) {
      if (!columns.has(column.split(" ")[0]!))
        sql.exec(`ALTER TABLE stream_subscriptions ADD COLUMN ${column}`);
    }
  }

  count(): number {
    this.#count ??= this.sql
      .exec<{ n: number }>("SELECT COUNT(*) AS n FROM stream_subscriptions")
      .one().n;
    return this.#count;
  }

  all(): Subscription[] {
    return this.sql
      .exec("SELECT * FROM stream_subscriptions ORDER BY key")
      .toArray()
      .map(toSubscription);
  }

  get(key: string): Subscription | null {
    const row = this.sql.exec("SELECT * FROM stream_subscriptions WHERE key = ?", key).toArray()[0];
    return row ? toSubscription(row) : null;
  }

  /** Reducer for `stream/subscription-configured` (called inside the append transaction). */
  configured(offset: number, event: SubscriptionConfigured): void {
    this.#count = undefined;
    const cursor =
      event.startAt === "beginning" ? 0 : event.startAt === "now" ? offset : event.startAt;
    this.sql.exec(
      `INSERT INTO stream_subscriptions (key, callable, event_types, start_at, anchor_offset, cursor)
       VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET callable = excluded.callable, event_types = excluded.event_types,
         start_at = excluded.start_at, anchor_offset = excluded.anchor_offset, cursor = excluded.cursor,
         health = 'active', attempts = 0, last_error = NULL, last_error_retryable = NULL, next_retry_at = NULL,
         stuck_offset = NULL, stuck_through = NULL`,
      event.key,
      JSON.stringify(event.callable),
      JSON.stringify(event.eventTypes),
      JSON.stringify(event.startAt),
      offset,
      Math.min(cursor, offset),
    );
  }

  /** Reducer for `stream/subscription-removed`. */
  removed(key: string): void {
    this.#count = undefined;
    this.sql.exec("DELETE FROM stream_subscriptions WHERE key = ?", key);
  }

  setSecret(key: string, secret: string): void {
    this.sql.exec("UPDATE stream_subscriptions SET secret = ? WHERE key = ?", secret, key);
  }

  /** Records an acknowledged delivery: the cursor only moves forward; health resets. */
  delivered(key: string, cursor: number): void {
    this.sql.exec(
      `UPDATE stream_subscriptions SET cursor = MAX(cursor, ?), health = 'active', attempts = 0,
         last_error = NULL, last_error_retryable = NULL, next_retry_at = NULL,
         stuck_offset = NULL, stuck_through = NULL WHERE key = ?`,
      cursor,
      key,
    );
  }

  /**
   * A self-feeding subscriber's acknowledgements (feed-leases.ts), in one UPDATE: each cursor
   * moves up to its `offset` (at most `upTo`) as on a delivery's answer, if the subscription
   * still has the anchor the subscriber knows and is healthy (a failing or parked one is
   * settled by its deliveries).
   */
  acknowledged(
    acks: readonly { key: string; anchorOffset: number; offset: number }[],
    upTo: number,
  ): void {
    if (acks.length === 0) return;
    this.sql.exec(
      `UPDATE stream_subscriptions AS s SET cursor = MIN(a.value ->> '$.offset', ?)
       FROM json_each(?) AS a
       WHERE s.key = a.value ->> '$.key' AND s.anchor_offset = a.value ->> '$.anchorOffset'
         AND s.health = 'active' AND s.next_retry_at IS NULL
         AND s.cursor < MIN(a.value ->> '$.offset', ?)`,
      upTo,
      JSON.stringify(acks),
      upTo,
    );
  }

  /**
   * Moves caught-up cursors from `from` to `to` for a commit that holds nothing these
   * subscriptions consume (Deliveries.passOver), in one UPDATE. A row that is no longer
   * caught up, active and without a retry time is left alone.
   */
  passedOver(keys: string[], from: number, to: number): void {
    this.sql.exec(
      `UPDATE stream_subscriptions SET cursor = ?
       WHERE cursor = ? AND health = 'active' AND next_retry_at IS NULL
         AND key IN (SELECT value FROM json_each(?))`,
      to,
      from,
      JSON.stringify(keys),
    );
  }

  /** Stops deliveries to the subscription until it is resumed or skipped. */
  parked(
    key: string,
    error: string,
    retryable: boolean,
    stuck: { offset: number; through: number },
  ): void {
    this.sql.exec(
      `UPDATE stream_subscriptions SET health = 'parked', attempts = attempts + 1, last_error = ?,
         last_error_retryable = ?, next_retry_at = NULL, stuck_offset = ?, stuck_through = ?
       WHERE key = ?`,
      error.slice(0, 2_000),
      retryable ? 1 : 0,
      stuck.offset,
      stuck.through,
      key,
    );
  }

  /**
   * Reducer for `stream/subscriber-resumed`: retry from the cursor now, with a fresh
   * attempt budget. It stays `failing` (last error kept) until a delivery succeeds.
   */
  resumed(key: string): void {
    this.sql.exec(
      `UPDATE stream_subscriptions SET health = 'failing', attempts = 0, next_retry_at = NULL,
         stuck_offset = NULL, stuck_through = NULL WHERE key = ? AND health = 'parked'`,
      key,
    );
  }

  /** Reducer for `stream/subscriber-skipped`: the cursor moves past the stuck events. */
  skipped(key: string, cursor: number): void {
    this.delivered(key, cursor);
  }

  failed(key: string, error: string, retryable: boolean, nextRetryAt: number): void {
    this.sql.exec(
      `UPDATE stream_subscriptions SET health = 'failing', attempts = attempts + 1, last_error = ?,
         last_error_retryable = ?, next_retry_at = ? WHERE key = ?`,
      error.slice(0, 2_000),
      retryable ? 1 : 0,
      nextRetryAt,
      key,
    );
  }

  clear(): void {
    this.#count = undefined;
    this.sql.exec("DELETE FROM stream_subscriptions");
  }

  /** True when the existing subscription has the same callable, event types and start. */
  static same(
    existing: Subscription,
    wanted: Pick<Subscription, "callable" | "eventTypes" | "startAt">,
  ): boolean {
    const types = (t: string[]) => [...t].sort().join("\n");
    return (
      callableKey(existing.callable) === callableKey(wanted.callable) &&
      types(existing.eventTypes) === types(wanted.eventTypes) &&
      JSON.stringify(existing.startAt) === JSON.stringify(wanted.startAt)
    );
  }
}

/**
 * Validated rows by their stored values. Rows are read on every commit and RPC (deliveries,
 * the alarm's next wake), and what changes between two reads is almost always the cursor
 * alone; so a row whose other columns are exactly those of a row already validated is that
 * row with its cursor checked by hand (an offset: a non-negative safe integer). Any other row
 * goes through the schema. Bounded.
 */
const ROW_CACHE_MAX = 512;
const rowCache = new Map<string, Readonly<Subscription>>();
const COLUMNS = (Object.keys(rowSchema.shape) as (keyof typeof rowSchema.shape)[]).filter(
  (column) => column !== "cursor",
);

/** The row's values but the cursor as one unambiguous text, or null when one is not plain. */
function rowText(raw: Record<string, SqlStorageValue>): string | null {
  const values: SqlStorageValue[] = [];
  for (const column of COLUMNS) {
    const value = raw[column];
    if (value !== null && typeof value === "object") return null;
    values.push(value ?? null);
  }
  return JSON.stringify(values);
}

function toSubscription(raw: Record<string, SqlStorageValue>): Subscription {
  const text = rowText(raw);
  const cached = text === null ? undefined : rowCache.get(text);
  const cursor = raw.cursor;
  if (cached && typeof cursor === "number" && Number.isSafeInteger(cursor) && cursor >= 0)
    return cached.cursor === cursor ? cached : Object.freeze({ ...cached, cursor });
  const sub = Object.freeze(parseRow(raw));
  if (text !== null) {
    if (rowCache.size >= ROW_CACHE_MAX) rowCache.clear();
    rowCache.set(text, sub);
  }
  return sub;
}

function parseRow(raw: Record<string, SqlStorageValue>): Subscription {
  const parsed = rowSchema.safeParse(raw);
  let config: Readonly<Config>;
  try {
    if (!parsed.success) throw new Error(issueText(parsed.error));
    config = configOf(parsed.data.callable, parsed.data.event_types, parsed.data.start_at);
  } catch (error) {
    throw corruptRecord(`stored subscription ${String(raw.key)}`, (error as Error).message);
  }
  const row = parsed.data;
  return {
    key: row.key,
    callable: config.callable,
    eventTypes: config.eventTypes,
    startAt: config.startAt,
    anchorOffset: row.anchor_offset,
    cursor: row.cursor,
    health: row.health,
    attempts: row.attempts,
    lastError: row.last_error,
    lastErrorRetryable: row.last_error_retryable === null ? null : row.last_error_retryable === 1,
    nextRetryAt: row.next_retry_at,
    stuckOffset: row.stuck_offset,
    stuckThrough: row.stuck_through,
    secret: row.secret,
  };
}
