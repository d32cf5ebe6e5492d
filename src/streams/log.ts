/**
 * The stream's durable state in the Durable Object's SQLite: one metadata row, the message
 * log, idempotent-producer state, fork references, and an outbox of calls owed to other
 * streams. Every method is synchronous on purpose: a DO runs synchronous code without
 * interleaving, so each mutation is one `transactionSync` with no await inside — an
 * eviction can only happen before or after it, never half-way. Callers await first
 * (reading bodies, RPC), then mutate.
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

export class StreamLog {
  #meta: StreamMeta | null | undefined;
  #owed: number | undefined;

  constructor(private readonly storage: DurableObjectStorage) {
    storage.sql.exec(SCHEMA);
  }

  private get sql(): SqlStorage {
    return this.storage.sql;
  }

  transaction<T>(fn: () => T): T {
    return this.storage.transactionSync(fn);
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

  private update(patch: Partial<StreamMeta>): void {
    const meta = this.meta();
    if (!meta) throw new Error("update of a stream that does not exist");
    const keys = Object.keys(patch) as (keyof StreamMeta)[];
    this.sql.exec(
      `UPDATE stream_meta SET ${keys.map((k) => `${k} = ?`).join(", ")} WHERE singleton = 1`,
      ...keys.map((k) => patch[k] ?? null),
    );
    this.#meta = { ...meta, ...patch };
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
  }

  /** Extends a sliding TTL (reads and writes do; HEAD does not). */
  touch(now: number): void {
    const meta = this.meta();
    if (meta?.ttl_seconds != null) this.update({ expires_at: now + meta.ttl_seconds * 1000 });
  }

  offsetOfKey(key: string): number | null {
    const row = this.sql
      .exec<{ offset: number }>("SELECT offset FROM stream_messages WHERE idempotency_key = ?", key)
      .toArray()[0];
    return row?.offset ?? null;
  }

  /**
   * Appends messages as one batch (call inside a transaction). A message whose idempotency
   * key is already stored — earlier, or earlier in this batch — is not stored again; its
   * entry in `offsets` is the original's offset.
   */
  append(messages: EncodedMessage[], now: number): { offsets: number[]; stored: number } {
    const meta = this.meta();
    if (!meta) throw new Error("append to a stream that does not exist");
    let tail = meta.tail;
    const appendStart = tail + 1;
    const offsets: number[] = [];
    const seen = new Map<string, number>();
    for (const message of messages) {
      const key = message.idempotencyKey;
      const earlier = key === null ? null : (seen.get(key) ?? this.offsetOfKey(key));
      if (earlier !== null) {
        offsets.push(earlier);
        continue;
      }
      tail += 1;
      this.insert({
        offset: tail,
        appendStart,
        type: message.type,
        idempotencyKey: key,
        body: message.body instanceof Uint8Array ? copyToArrayBuffer(message.body) : message.body,
        createdAt: now,
      });
      if (key !== null) seen.set(key, tail);
      offsets.push(tail);
    }
    const stored = tail - meta.tail;
    if (stored > 0) this.update({ tail });
    return { offsets, stored };
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
   * rows and the other columns cost more than the read itself).
   */
  readPage(after: number, upTo: number, limit: number, maxBytes: number): PageMessage[] {
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

function copyToArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}
