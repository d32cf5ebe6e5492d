/**
 * The stream's durable state in the Durable Object's SQLite: one metadata row, the message
 * log, idempotent-producer state, fork references, and an outbox of calls owed to other
 * streams. Every method is synchronous on purpose: a DO runs synchronous code without
 * interleaving, so each mutation is one `transactionSync` with no await inside — an
 * eviction can only happen before or after it, never half-way. Callers await first
 * (reading bodies, RPC), then mutate.
 *
 * Per append the statements are few (it is the hot path of every session turn): the
 * messages go in as one multi-row INSERT, which the unique index on idempotency keys
 * refuses if a key is already stored (only then are the keys looked up), and the metadata
 * row, cached in memory, is written once at the end of the transaction, whatever changed
 * in it. A transaction that throws drops what it cached (the metadata is read back and
 * validated again). The last committed messages stay in memory (bounded) so that live
 * readers and deliveries of a fresh commit do not read back what was just written.
 */
import { corruptRecord } from "../errors/domain";
import { issueText } from "../errors/parse";
import { normaliseStoredExpiry } from "./expiry";
import {
  type CloseStatus,
  metaRowSchema,
  type NewStream,
  type PageMessage,
  producerRowSchema,
  SCHEMA,
  type StoredMessage,
  type StreamMeta,
  toStoredMessage,
} from "./log-schema";
import type { EncodedMessage } from "./messages";

export type {
  CloseStatus,
  NewStream,
  PageMessage,
  StoredMessage,
  StreamMeta,
} from "./log-schema";

/** Rows per multi-row INSERT: a statement binds at most 100 parameters (2 shared, 4 per row). */
const INSERT_ROWS = 24;
/** Keys per idempotency-key lookup (100 bound parameters at most). */
const KEY_LOOKUP = 100;
/** The recent committed messages kept in memory for live reads (count and bytes). */
const RECENT_MESSAGES = 64;
const RECENT_BYTES = 64 * 1024;

export class StreamLog {
  #meta: StreamMeta | null | undefined;
  /** Columns of the metadata row changed in memory and not yet written (see `transaction`). */
  #dirty: Partial<StreamMeta> | null = null;
  #owed: number | undefined;
  /** Nesting depth of `transaction`. */
  #depth = 0;
  /** The last committed messages, contiguous offsets, string bodies only (bounded). */
  #recent: StoredMessage[] = [];
  #recentBytes = 0;
  /** Messages stored by the open transaction: recent once it commits, dropped if it throws. */
  #pending: StoredMessage[] = [];

  constructor(private readonly storage: DurableObjectStorage) {
    storage.sql.exec(SCHEMA);
  }

  private get sql(): SqlStorage {
    return this.storage.sql;
  }

  /**
   * Runs `fn` in one transaction (nested calls are savepoints). Metadata changes are written
   * as one UPDATE when `fn` returns, and pending ones before a nested transaction starts, so
   * that storage matches the cache wherever a rollback can land. If anything throws, the
   * cached metadata is dropped (read back, validated, on next use), and so are the messages
   * this transaction stored; they join the recent ones only when the outermost commits.
   */
  transaction<T>(fn: () => T): T {
    this.#flush();
    this.#depth += 1;
    try {
      const result = this.storage.transactionSync(() => {
        const value = fn();
        this.#flush();
        return value;
      });
      if (this.#depth === 1) this.#promote();
      return result;
    } catch (error) {
      this.#meta = undefined;
      this.#dirty = null;
      this.#owed = undefined;
      this.#pending = [];
      throw error;
    } finally {
      this.#depth -= 1;
    }
  }

  /** Writes the metadata columns changed in memory, in one statement. */
  #flush(): void {
    const dirty = this.#dirty;
    if (dirty === null) return;
    this.#dirty = null;
    const keys = Object.keys(dirty) as (keyof StreamMeta)[];
    this.sql.exec(
      `UPDATE stream_meta SET ${keys.map((k) => `${k} = ?`).join(", ")} WHERE singleton = 1`,
      ...keys.map((k) => dirty[k] ?? null),
    );
  }

  /** The metadata row, validated when read back and cached (this object is its only writer). */
  meta(): StreamMeta | null {
    if (this.#meta === undefined) {
      const row = this.sql.exec("SELECT * FROM stream_meta WHERE singleton = 1").toArray()[0];
      if (row === undefined) this.#meta = null;
      else {
        const parsed = metaRowSchema.safeParse(row);
        if (!parsed.success) {
          throw corruptRecord("stream metadata", issueText(parsed.error));
        }
        this.#meta = this.#repairedExpiry(parsed.data);
      }
    }
    return this.#meta;
  }

  /**
   * A TTL or expiry outside the bounds of expiry.ts (stored before they existed) would make
   * every request fail (alarm and Date limits): it is clamped into range, written back, and
   * reported once.
   */
  #repairedExpiry(meta: StreamMeta): StreamMeta {
    const repaired = normaliseStoredExpiry(meta.ttl_seconds, meta.expires_at);
    if (!repaired) return meta;
    console.warn(
      JSON.stringify({
        msg: "stored stream expiry out of range; clamped",
        stream: meta.name,
        ttlSeconds: meta.ttl_seconds,
        expiresAt: meta.expires_at,
        repaired,
      }),
    );
    this.sql.exec(
      "UPDATE stream_meta SET ttl_seconds = ?, expires_at = ? WHERE singleton = 1",
      repaired.ttlSeconds,
      repaired.expiresAt,
    );
    return { ...meta, ttl_seconds: repaired.ttlSeconds, expires_at: repaired.expiresAt };
  }

  /** Changes the metadata row: in memory now, in storage when the transaction ends (see there). */
  private update(patch: Partial<StreamMeta>): void {
    const meta = this.meta();
    if (!meta) throw new Error("update of a stream that does not exist");
    this.#meta = { ...meta, ...patch };
    this.#dirty = { ...this.#dirty, ...patch };
    if (this.#depth === 0) this.#flush();
  }

  /** Inserts the metadata row and any inherited (forked) messages. Call inside a transaction. */
  create(stream: NewStream, now: number, inherited: StoredMessage[]): void {
    this.sql.exec(
      `INSERT INTO stream_meta (singleton, id, name, path, content_type, created_at, tail, ttl_seconds,
         expires_at, forked_from, fork_offset, fork_sub_offset)
       VALUES (1, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)`,
      stream.id,
      stream.name,
      stream.path,
      stream.contentType,
      now,
      stream.ttlSeconds,
      stream.ttlSeconds !== null ? now + stream.ttlSeconds * 1000 : stream.expiresAt,
      stream.fork?.source ?? null,
      stream.fork?.offset ?? null,
      stream.fork?.subOffset ?? null,
    );
    this.#meta = undefined;
    this.#dirty = null;
    for (const m of inherited) this.insert(m);
    const last = inherited.at(-1);
    if (last) this.update({ tail: last.offset });
  }

  private insert(m: StoredMessage): void {
    this.sql.exec(
      "INSERT INTO stream_messages (offset, append_start, type, idempotency_key, body, created_at) VALUES (?, ?, ?, ?, ?, ?)",
      m.offset,
      m.appendStart,
      m.type,
      m.idempotencyKey,
      m.body,
      m.createdAt,
    );
  }

  /** Removes the stream and everything in it; the outbox survives (it is owed to others). */
  purge(): void {
    this.sql.exec(
      "DELETE FROM stream_messages; DELETE FROM stream_producers; DELETE FROM stream_forks; DELETE FROM stream_meta;",
    );
    this.#meta = null;
    this.#dirty = null;
    this.#recent = [];
    this.#recentBytes = 0;
    this.#pending = [];
  }

  /** Extends a sliding TTL (reads and writes do; HEAD does not). Call inside a transaction. */
  touch(now: number): void {
    const meta = this.meta();
    if (meta?.ttl_seconds != null) this.update({ expires_at: now + meta.ttl_seconds * 1000 });
  }

  /** A read's `touch`, in its own transaction, opened only when there is a sliding TTL to extend. */
  touchForRead(now: number): void {
    if (this.meta()?.ttl_seconds != null) this.transaction(() => this.touch(now));
  }

  offsetOfKey(key: string): number | null {
    const row = this.sql
      .exec<{ offset: number }>("SELECT offset FROM stream_messages WHERE idempotency_key = ?", key)
      .toArray()[0];
    return row?.offset ?? null;
  }

  /** The stored offsets of these idempotency keys (absent: not stored), in few statements. */
  offsetsOfKeys(keys: string[]): Map<string, number> {
    const found = new Map<string, number>();
    const unique = [...new Set(keys)];
    for (let i = 0; i < unique.length; i += KEY_LOOKUP) {
      const part = unique.slice(i, i + KEY_LOOKUP);
      const rows = this.sql
        .exec(
          `SELECT idempotency_key, offset FROM stream_messages WHERE idempotency_key IN (${part.map(() => "?").join(", ")})`,
          ...part,
        )
        .raw();
      for (const [key, offset] of rows) {
        if (typeof key !== "string" || typeof offset !== "number") {
          throw corruptRecord(`stored message ${String(offset)}`, "a column has the wrong type");
        }
        found.set(key, offset);
      }
    }
    return found;
  }

  /**
   * Appends messages as one batch (call inside a transaction). A message whose idempotency
   * key is already stored — earlier, or earlier in this batch — is not stored again; its
   * entry in `offsets` is the original's offset.
   *
   * First try: every message is new (the common case), one INSERT per INSERT_ROWS rows. If
   * one is refused (a key is stored, or repeats in the batch), the rows just inserted are
   * taken out again and the batch is placed against the stored keys, looked up together.
   */
  append(messages: EncodedMessage[], now: number): { offsets: number[]; stored: number } {
    const meta = this.meta();
    if (!meta) throw new Error("append to a stream that does not exist");
    const from = meta.tail;
    if (messages.length === 0) return { offsets: [], stored: 0 };
    const rows = messages.map((message, i) => this.#row(message, from + 1 + i, from + 1, now));
    let stored = rows;
    let offsets = rows.map((row) => row.offset);
    try {
      this.#insert(rows);
    } catch {
      // Most likely a stored (or repeated) key: SQLite undid the failing statement; rows of
      // earlier statements are taken out (no row above `from` existed before, or the first
      // statement would have failed on its offset). Any other failure fails again below.
      if (rows.length > INSERT_ROWS)
        this.sql.exec("DELETE FROM stream_messages WHERE offset > ?", from);
      const keys = messages.flatMap((m) => (m.idempotencyKey === null ? [] : [m.idempotencyKey]));
      const seen = this.offsetsOfKeys(keys);
      stored = [];
      offsets = [];
      let tail = from;
      for (const message of messages) {
        const key = message.idempotencyKey;
        const earlier = key === null ? undefined : seen.get(key);
        if (earlier !== undefined) {
          offsets.push(earlier);
          continue;
        }
        tail += 1;
        stored.push(this.#row(message, tail, from + 1, now));
        if (key !== null) seen.set(key, tail);
        offsets.push(tail);
      }
      this.#insert(stored);
    }
    if (stored.length > 0) {
      this.update({ tail: from + stored.length });
      if (this.#depth > 0) this.#pending.push(...stored);
    }
    return { offsets, stored: stored.length };
  }

  #row(message: EncodedMessage, offset: number, appendStart: number, now: number): StoredMessage {
    return {
      offset,
      appendStart,
      type: message.type,
      idempotencyKey: message.idempotencyKey,
      body: message.body instanceof Uint8Array ? copyToArrayBuffer(message.body) : message.body,
      createdAt: now,
    };
  }

  /**
   * Inserts rows that share append start and time, INSERT_ROWS per statement. A conflict
   * (an offset or a key already stored) throws, and SQLite undoes that statement only.
   */
  #insert(rows: StoredMessage[]): void {
    for (let i = 0; i < rows.length; i += INSERT_ROWS) {
      const part = rows.slice(i, i + INSERT_ROWS);
      const values: SqlStorageValue[] = [part[0]!.appendStart, part[0]!.createdAt];
      for (const row of part) values.push(row.offset, row.type, row.idempotencyKey, row.body);
      this.sql.exec(insertStatement(part.length), ...values);
    }
  }

  close(now: number, status: CloseStatus, reason: string | null): void {
    this.update({ closed_at: now, close_status: status, close_reason: reason });
  }

  setStreamSeq(seq: string): void {
    this.update({ last_stream_seq: seq });
  }

  producer(id: string): { epoch: number; lastSeq: number } | null {
    const row = this.sql
      .exec("SELECT epoch, last_seq FROM stream_producers WHERE producer_id = ?", id)
      .toArray()[0];
    if (!row) return null;
    const parsed = producerRowSchema.parse(row);
    return { epoch: parsed.epoch, lastSeq: parsed.last_seq };
  }

  setProducer(id: string, epoch: number, lastSeq: number): void {
    this.sql.exec(
      `INSERT INTO stream_producers (producer_id, epoch, last_seq) VALUES (?, ?, ?)
       ON CONFLICT (producer_id) DO UPDATE SET epoch = excluded.epoch, last_seq = excluded.last_seq`,
      id,
      epoch,
      lastSeq,
    );
  }

  /**
   * Messages with offset in (after, upTo], at most `limit` and about `maxBytes` in total
   * (always at least one, so a single large message still makes progress).
   */
  read(
    after: number,
    upTo: number,
    limit: number,
    maxBytes = Number.POSITIVE_INFINITY,
  ): StoredMessage[] {
    const recent = this.#recentRange(after, upTo);
    if (recent) return cut(recent, limit, maxBytes, (m) => ({ ...m }));
    const out: StoredMessage[] = [];
    let bytes = 0;
    const rows = this.sql.exec(
      "SELECT offset, append_start, type, idempotency_key, body, created_at FROM stream_messages WHERE offset > ? AND offset <= ? ORDER BY offset LIMIT ?",
      after,
      upTo,
      limit,
    );
    for (const row of rows) {
      const message = toStoredMessage(row);
      const body = message.body;
      const size = typeof body === "string" ? body.length : body.byteLength;
      if (out.length > 0 && bytes + size > maxBytes) break;
      bytes += size;
      out.push(message);
    }
    return out;
  }

  /**
   * The hot path of catch-up and live reads: only offset, body and time, as raw rows (object
   * rows and the other columns cost more than the read itself). A fresh commit is served
   * from memory.
   */
  readPage(after: number, upTo: number, limit: number, maxBytes: number): PageMessage[] {
    const recent = this.#recentRange(after, upTo);
    if (recent) {
      return cut(recent, limit, maxBytes, (m) => ({
        offset: m.offset,
        body: m.body,
        createdAt: m.createdAt,
      }));
    }
    const out: PageMessage[] = [];
    let bytes = 0;
    const rows = this.sql
      .exec(
        "SELECT offset, body, created_at FROM stream_messages WHERE offset > ? AND offset <= ? ORDER BY offset LIMIT ?",
        after,
        upTo,
        limit,
      )
      .raw();
    for (const [offset, body, createdAt] of rows) {
      if (
        typeof offset !== "number" ||
        typeof createdAt !== "number" ||
        (typeof body !== "string" && !(body instanceof ArrayBuffer))
      ) {
        throw corruptRecord(`stored message ${String(offset)}`, "a column has the wrong type");
      }
      const size = typeof body === "string" ? body.length : body.byteLength;
      if (out.length > 0 && bytes + size > maxBytes) break;
      bytes += size;
      out.push({ offset, body, createdAt });
    }
    return out;
  }

  /** The recent messages with offset in (after, upTo], if that range is all in memory. */
  #recentRange(after: number, upTo: number): StoredMessage[] | null {
    const first = this.#recent[0];
    if (!first || after < first.offset - 1 || upTo > this.#recent.at(-1)!.offset) return null;
    return this.#recent.slice(after + 1 - first.offset, Math.max(0, upTo + 1 - first.offset));
  }

  /**
   * The outermost transaction committed: its messages join the recent ones (kept contiguous
   * and bounded; a byte body, or a gap, starts them over).
   */
  #promote(): void {
    const pending = this.#pending;
    if (pending.length === 0) return;
    this.#pending = [];
    const last = this.#recent.at(-1);
    if (
      (last !== undefined && pending[0]!.offset !== last.offset + 1) ||
      pending.some((m) => typeof m.body !== "string")
    ) {
      this.#recent = [];
      this.#recentBytes = 0;
      if (pending.some((m) => typeof m.body !== "string")) return;
    }
    for (const message of pending) {
      this.#recent.push(message);
      this.#recentBytes += (message.body as string).length;
    }
    let drop = 0;
    while (
      drop < this.#recent.length &&
      (this.#recent.length - drop > RECENT_MESSAGES || this.#recentBytes > RECENT_BYTES)
    ) {
      this.#recentBytes -= (this.#recent[drop]!.body as string).length;
      drop += 1;
    }
    if (drop > 0) this.#recent = this.#recent.slice(drop);
  }

  /** The messages of the append that starts at `appendStart`, in order. */
  appendRecord(appendStart: number): StoredMessage[] {
    const first = this.read(appendStart - 1, appendStart, 1)[0];
    if (!first || first.appendStart !== appendStart) return [];
    const ids = this.sql
      .exec<{ last: number }>(
        "SELECT MAX(offset) AS last FROM stream_messages WHERE append_start = ?",
        appendStart,
      )
      .one();
    return this.read(appendStart - 1, ids.last, Number.MAX_SAFE_INTEGER);
  }

  addForkRef(name: string): void {
    const added = this.sql
      .exec(
        "INSERT INTO stream_forks (fork_name) VALUES (?) ON CONFLICT DO NOTHING RETURNING fork_name",
        name,
      )
      .toArray().length;
    if (added > 0) this.update({ fork_refs: this.meta()!.fork_refs + 1 });
  }

  /** Drops a fork's reference; returns how many remain. */
  removeForkRef(name: string): number {
    const meta = this.meta();
    if (!meta) return 0;
    const removed = this.sql
      .exec("DELETE FROM stream_forks WHERE fork_name = ? RETURNING fork_name", name)
      .toArray().length;
    if (removed > 0) this.update({ fork_refs: Math.max(0, meta.fork_refs - 1) });
    return this.meta()!.fork_refs;
  }

  softDelete(): void {
    this.update({ soft_deleted: 1 });
  }

  /** Records that `source` must be told that `fork` is gone (delivered by the outbox). */
  owe(source: string, fork: string): void {
    this.sql.exec(
      "INSERT INTO stream_outbox (source_name, fork_name) VALUES (?, ?) ON CONFLICT DO NOTHING",
      source,
      fork,
    );
    this.#owed = undefined;
  }

  /** How many calls are owed (cached: checked after every request). */
  owedCount(): number {
    this.#owed ??= this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM stream_outbox").one().n;
    return this.#owed;
  }

  owed(): { source: string; fork: string; attempts: number }[] {
    return this.sql
      .exec<{ source_name: string; fork_name: string; attempts: number }>(
        "SELECT source_name, fork_name, attempts FROM stream_outbox",
      )
      .toArray()
      .map((r) => ({ source: r.source_name, fork: r.fork_name, attempts: r.attempts }));
  }

  settle(source: string, fork: string, delivered: boolean): void {
    this.#owed = undefined;
    this.sql.exec(
      delivered
        ? "DELETE FROM stream_outbox WHERE source_name = ? AND fork_name = ?"
        : "UPDATE stream_outbox SET attempts = attempts + 1 WHERE source_name = ? AND fork_name = ?",
      source,
      fork,
    );
  }
}

/** The first `limit` messages, cut after about `maxBytes` (at least one), as `read` answers. */
function cut<T>(
  messages: StoredMessage[],
  limit: number,
  maxBytes: number,
  as: (message: StoredMessage) => T,
): T[] {
  const out: T[] = [];
  let bytes = 0;
  for (const message of messages) {
    if (out.length >= limit) break;
    const size = typeof message.body === "string" ? message.body.length : message.body.byteLength;
    if (out.length > 0 && bytes + size > maxBytes) break;
    bytes += size;
    out.push(as(message));
  }
  return out;
}

const insertStatements: string[] = [];

/** `INSERT` of `rows` messages; ?1 and ?2 are the shared append start and time. */
function insertStatement(rows: number): string {
  let sql = insertStatements[rows];
  if (sql === undefined) {
    const values = Array.from({ length: rows }, (_, i) => {
      const at = 3 + i * 4;
      return `(?${at}, ?1, ?${at + 1}, ?${at + 2}, ?${at + 3}, ?2)`;
    });
    sql = `INSERT INTO stream_messages (offset, append_start, type, idempotency_key, body, created_at) VALUES ${values.join(", ")}`;
    insertStatements[rows] = sql;
  }
  return sql;
}

function copyToArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}
