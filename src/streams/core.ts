/**
 * The stream's rules, shared by both doors (typed RPC and the Durable Streams HTTP face) so
 * that they cannot drift: lifecycle (missing / live / soft-deleted, TTL expiry), appends with
 * idempotent producers, Stream-Seq, idempotency keys and closing, reads, forks and deletes.
 * The parts with rules of their own are their own modules: producers.ts (the producer state
 * machine), forks.ts (snapshots, copying, the release outbox), append-input.ts (bodies,
 * reserved events and keys) and append-checks.ts (what an append must pass before it commits).
 *
 * Shape: every mutation validates first and then commits in one synchronous transaction
 * (see log.ts). The only awaits are on other streams (forks); state is re-checked after
 * them. Calls owed to other streams (releasing a fork reference) go through a durable
 * outbox that the alarm retries, so an eviction between two steps loses nothing.
 */
import { ulid } from "ulidx";
import { conflict, gone, invalidInput, notFound } from "../errors/domain";
import { trace } from "../trace";
import { type AppendRequest, checkAppend } from "./append-checks";
import { checkClientKeys, checkReserved, parseBody } from "./append-input";
import {
  DEFAULT_CONTENT_TYPE,
  isValidContentType,
  mediaType,
  sameContentType,
} from "./content-type";
import { type CreateRequest, createDifferences } from "./create-request";
import {
  copyFrom,
  EXPORT_PAGE,
  type ForkSnapshot,
  type ForkSnapshotRequest,
  flushOutbox,
  type StreamPeers,
  subOffsetPrefix,
} from "./forks";
import type { CloseStatus, StoredMessage, StreamLog, StreamMeta } from "./log";
import { decodeEvent, type StreamEvent } from "./messages";
import { encodeOffset, parseOffset } from "./offsets";
import type { DuplicateAppend, ProducerClaim } from "./producers";
import type { SelfFeed } from "./stream-rpc";
import type { SystemEventType } from "./system-events";
import type { TailWaiters } from "./tail-waiters";

export type { AppendRequest } from "./append-checks";
export type { CreateRequest } from "./create-request";

export type StreamState =
  | { kind: "missing" }
  | { kind: "gone"; meta: StreamMeta }
  | { kind: "live"; meta: StreamMeta };

export type AppendOutcome =
  | {
      kind: "appended";
      offsets: number[];
      /** Offsets above this were stored by this append (the rest are idempotent repeats). */
      previousTail: number;
      /** Commit time of the stored messages. */
      at: number;
      tail: number;
      closed: boolean;
      producer: ProducerClaim | null;
    }
  | DuplicateAppend
  | { kind: "already-closed"; tail: number };

/** How the hosting Durable Object plugs into the stream's life. */
export interface CoreHooks {
  /** Keeps background work (outbox, deliveries) alive past the current request. */
  background(work: Promise<unknown>): void;
  /** Reduces a committed `stream/` event; runs inside the committing transaction. */
  systemEvent(offset: number, type: SystemEventType, payload: unknown): void;
  /**
   * Inside an append's transaction, once its messages are stored and before its `stream/`
   * events are reduced: `from` is the tail before them and `types` the types of the stored
   * ones (offsets `from + 1` … `to`), `selfFeed` what the writer feeds itself. Deliveries
   * settle here what needs no delivery run.
   */
  stored(from: number, to: number, types: (string | null)[], selfFeed?: SelfFeed): void;
  /** After a commit that stored messages (deliveries start here). */
  committed(tail: number): void;
  /** Inside the transaction that removes the stream: drop state kept outside the log. */
  purged(): void;
}

export class StreamCore {
  constructor(
    readonly log: StreamLog,
    readonly waiters: TailWaiters,
    private readonly peers: StreamPeers,
    private readonly hooks: CoreHooks,
  ) {}

  /** Resolves the stream's lifecycle state, expiring it first if its time has come. */
  state(now: number): StreamState {
    const meta = this.log.meta();
    if (!meta) return { kind: "missing" };
    if (meta.soft_deleted) return { kind: "gone", meta };
    if (meta.expires_at !== null && now >= meta.expires_at) return this.remove();
    return { kind: "live", meta };
  }

  /** The live stream's metadata, or a 404 / 410. */
  live(now: number): StreamMeta {
    const state = this.state(now);
    if (state.kind === "missing") throw notFound("stream not found");
    if (state.kind === "gone") throw gone("stream was deleted; its forks still read it");
    return state.meta;
  }

  // ---- create -------------------------------------------------------------------------

  /** Creates the stream, or confirms an identical one (`created: false`); a different one is a 409. */
  async create(request: CreateRequest): Promise<{ created: boolean; meta: StreamMeta }> {
    if (request.contentType !== null && !isValidContentType(request.contentType)) {
      throw invalidInput(
        `Content-Type ${JSON.stringify(request.contentType.slice(0, 100))} is not a valid media type`,
        undefined,
        "invalid_header",
      );
    }
    const existing = this.existing(request);
    if (existing) return existing;
    const parse = (type: string) => {
      const messages =
        request.body && request.body.byteLength > 0 ? parseBody(type, request.body, true) : [];
      checkReserved(messages, false);
      checkClientKeys(messages);
      return messages;
    };
    // Validate the body before touching a fork source when its type is already known.
    let messages =
      request.contentType !== null || !request.fork
        ? parse(request.contentType ?? DEFAULT_CONTENT_TYPE)
        : null;
    let snapshot: ForkSnapshot | null = null;
    let inherited: StoredMessage[] = [];
    if (request.fork) {
      snapshot = await this.peers.forkSnapshot(request.fork.source, request.name, {
        offset: request.fork.offset,
        subOffset: request.fork.subOffset,
        contentType: request.contentType,
      });
      try {
        inherited = await copyFrom(this.peers, request.fork.source, snapshot);
      } catch (error) {
        this.releaseSource(request.fork.source, request.name);
        throw error;
      }
      const raced = this.existing(request);
      if (raced) return raced;
    }
    const now = Date.now();
    const contentType = request.contentType ?? snapshot?.contentType ?? DEFAULT_CONTENT_TYPE;
    const ownExpiry = request.ttlSeconds !== null || request.expiresAt !== null;
    try {
      messages ??= parse(contentType);
    } catch (error) {
      if (request.fork) this.releaseSource(request.fork.source, request.name);
      throw error;
    }
    const body = messages;
    this.log.transaction(() => {
      this.log.create(
        {
          id: ulid(),
          name: request.name,
          path: request.path,
          contentType,
          ttlSeconds: ownExpiry ? request.ttlSeconds : (snapshot?.ttlSeconds ?? null),
          expiresAt: ownExpiry ? request.expiresAt : (snapshot?.expiresAt ?? null),
          fork: request.fork,
        },
        now,
        inherited,
      );
      if (body.length > 0) this.log.append(body, now);
      if (request.close) this.log.close(now, "ended", null);
    });
    const meta = this.log.meta()!;
    this.waiters.notifyData(meta.tail);
    if (meta.tail > 0) this.hooks.committed(meta.tail);
    return { created: true, meta };
  }

  /** For a PUT on an existing name: the idempotent answer, or a 409 / 410. */
  private existing(request: CreateRequest): { created: false; meta: StreamMeta } | null {
    const state = this.state(Date.now());
    if (state.kind === "missing") return null;
    if (state.kind === "gone")
      throw conflict("a deleted stream with live forks still holds this path");
    const meta = state.meta;
    const differences = createDifferences(request, meta);
    if (differences.length > 0) {
      throw conflict(`stream exists with a different ${differences.join(", ")}`, { differences });
    }
    return { created: false, meta };
  }

  // ---- fork source side ---------------------------------------------------------------

  /** Validates a fork request against this (source) stream and registers the fork's reference. */
  forkSnapshot(fork: string, request: ForkSnapshotRequest): ForkSnapshot {
    const state = this.state(Date.now());
    if (state.kind === "missing") throw notFound("fork source stream not found");
    if (state.kind === "gone") throw conflict("fork source stream was deleted");
    const meta = state.meta;
    if (request.contentType !== null && !sameContentType(request.contentType, meta.content_type)) {
      throw conflict(
        `fork content type ${mediaType(request.contentType)} differs from the source's ${meta.content_type}`,
      );
    }
    const base = request.offset === null ? meta.tail : this.position(request.offset, meta);
    const prefix = subOffsetPrefix(this.log, meta, base, request.subOffset);
    this.log.transaction(() => this.log.addForkRef(fork));
    return {
      contentType: meta.content_type,
      ttlSeconds: meta.ttl_seconds,
      expiresAt: meta.expires_at,
      base,
      prefix,
    };
  }

  /** Pages of stored messages for a fork being created (works while soft-deleted). */
  exportMessages(after: number, upTo: number): StoredMessage[] {
    if (!this.log.meta()) throw notFound("fork source stream not found");
    return this.log.read(after, upTo, EXPORT_PAGE);
  }

  /** A fork is gone: drop its reference, and collect this stream if it was only kept for forks. */
  releaseFork(fork: string): void {
    const meta = this.log.meta();
    if (!meta) return;
    const remaining = this.log.transaction(() => this.log.removeForkRef(fork));
    if (meta.soft_deleted && remaining === 0) this.remove();
  }

  // ---- append / close -----------------------------------------------------------------

  append(request: AppendRequest, now = Date.now()): AppendOutcome {
    const meta = this.live(now);
    const checked = checkAppend(this.log, meta, request);
    if (checked.kind !== "accepted") return checked;
    const { messages, system, producerState, seq } = checked;
    const result = this.log.transaction(() => {
      const appended = this.log.append(messages, now);
      if (appended.stored > 0) {
        const types = messages
          .filter((_, i) => appended.offsets[i]! > meta.tail)
          .map((m) => m.type);
        this.hooks.stored(meta.tail, meta.tail + appended.stored, types, request.selfFeed);
      }
      for (const { index, type, payload } of system) {
        const offset = appended.offsets[index]!;
        if (offset > meta.tail) this.hooks.systemEvent(offset, type, payload);
      }
      if (seq !== null) this.log.setStreamSeq(seq);
      if (request.producer && producerState) {
        this.log.setProducer(request.producer.id, producerState.epoch, producerState.seq);
      }
      if (request.close) this.log.close(now, request.close.status, request.close.reason);
      this.log.touch(now);
      return appended;
    });
    const after = this.log.meta()!;
    trace("stream.committed", () => ({
      stream: after.path,
      offsets: result.offsets,
      types: messages.map((m) => m.type),
    }));
    if (result.stored > 0) this.waiters.notifyData(after.tail);
    if (request.close) this.waiters.notifyAll("closed");
    if (result.stored > 0) this.hooks.committed(after.tail);
    return {
      kind: "appended",
      offsets: result.offsets,
      previousTail: meta.tail,
      at: now,
      tail: after.tail,
      closed: after.closed_at !== null,
      producer:
        request.producer && producerState ? { ...request.producer, ...producerState } : null,
    };
  }

  /** Closes the stream; the first terminal writer wins and later calls change nothing. */
  close(status: CloseStatus, reason: string | null): StreamMeta {
    this.append({ body: null, close: { status, reason } });
    return this.log.meta()!;
  }

  // ---- read ---------------------------------------------------------------------------

  /** Resolves a wire offset (or sentinel) to a position in this stream; past the tail is a 400. */
  position(raw: string | null, meta: StreamMeta): number {
    const offset = parseOffset(raw);
    if (offset.kind === "start") return 0;
    if (offset.kind === "now") return meta.tail;
    if (offset.position > meta.tail) {
      throw invalidInput(
        `offset ${raw} is beyond the end of the stream (${encodeOffset(meta.tail)})`,
        undefined,
        "invalid_offset",
      );
    }
    return offset.position;
  }

  /** Typed reads (RPC). Like HTTP reads, they extend a sliding TTL. */
  readEvents(after: number, limit: number): { events: StreamEvent[]; meta: StreamMeta } {
    const now = Date.now();
    this.live(now);
    this.log.touchForRead(now);
    const meta = this.live(now);
    if (after < 0 || after > meta.tail) {
      throw invalidInput(`after must be between 0 and ${meta.tail}`, undefined, "invalid_offset");
    }
    const events = this.log
      .read(after, meta.tail, limit)
      .map((m) => decodeEvent(m.offset, m.body, m.createdAt));
    return { events, meta };
  }

  // ---- delete -------------------------------------------------------------------------

  /** DELETE: soft while forks still reference the stream (410 from then on), else removal. */
  delete(now = Date.now()): void {
    const meta = this.live(now);
    if (meta.fork_refs > 0) {
      this.log.transaction(() => this.log.softDelete());
      this.waiters.notifyAll("deleted");
      return;
    }
    this.remove();
  }

  /**
   * Removes the stream (delete, expiry, last fork gone). A stream still referenced by forks
   * is soft-deleted instead. A fork owes its source a release, recorded in the same
   * transaction and delivered by the outbox.
   */
  private remove(): StreamState {
    const meta = this.log.meta();
    if (!meta) return { kind: "missing" };
    if (meta.fork_refs > 0) {
      this.log.transaction(() => this.log.softDelete());
      this.waiters.notifyAll("deleted");
      return { kind: "gone", meta: this.log.meta()! };
    }
    this.log.transaction(() => {
      if (meta.forked_from !== null) this.log.owe(meta.forked_from, meta.name);
      this.log.purge();
      this.hooks.purged();
    });
    this.waiters.notifyAll("deleted");
    this.hooks.background(this.flushOutbox());
    return { kind: "missing" };
  }

  /** A fork that will not be created gives its source reference back (through the outbox). */
  private releaseSource(source: string, fork: string): void {
    this.log.transaction(() => this.log.owe(source, fork));
    this.hooks.background(this.flushOutbox());
  }

  /** Delivers owed fork releases; undelivered ones stay for the alarm to retry. */
  flushOutbox(): Promise<boolean> {
    return flushOutbox(this.log, this.peers);
  }
}
