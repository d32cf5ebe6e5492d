/**
 * The stream's rules, shared by both doors (typed RPC and the Durable Streams HTTP face) so
 * that they cannot drift: lifecycle (missing / live / soft-deleted, TTL expiry), appends with
 * idempotent producers, Stream-Seq, idempotency keys and closing, reads, forks and deletes.
 *
 * Shape: every mutation validates first and then commits in one synchronous transaction
 * (see log.ts). The only awaits are on other streams (forks); state is re-checked after
 * them. Calls owed to other streams (releasing a fork reference) go through a durable
 * outbox that the alarm retries, so an eviction between two steps loses nothing.
 */
import { ulid } from "ulidx";
import {
  conflict,
  type DomainError,
  forbidden,
  gone,
  invalidInput,
  notFound,
} from "../errors/domain";
import { trace } from "../trace";
import {
  DEFAULT_CONTENT_TYPE,
  isJsonType,
  isValidContentType,
  mediaType,
  sameContentType,
} from "./content-type";
import { isProcessorKey } from "./idempotency-keys";
import type { CloseStatus, StoredMessage, StreamLog, StreamMeta } from "./log";
import {
  decodeEvent,
  type EncodedMessage,
  encodeBytesBody,
  encodeJsonBody,
  type StreamEvent,
} from "./messages";
import { encodeOffset, parseOffset } from "./offsets";
import { isReservedType, type SystemEventType, systemEventSchemas } from "./system-events";
import type { TailWaiters } from "./tail-waiters";

export type StreamState =
  | { kind: "missing" }
  | { kind: "gone"; meta: StreamMeta }
  | { kind: "live"; meta: StreamMeta };

export interface ProducerClaim {
  id: string;
  epoch: number;
  seq: number;
}

/** What an append carries: raw HTTP bytes (parsed per the stream's mode), typed events, or nothing (close only). */
export type AppendBody =
  | { kind: "bytes"; bytes: Uint8Array; contentType: string | null }
  | { kind: "messages"; messages: EncodedMessage[] }
  | null;

export interface AppendRequest {
  body: AppendBody;
  close?: { status: CloseStatus; reason: string | null };
  producer?: ProducerClaim | null;
  streamSeq?: string | null;
  /** Optimistic concurrency: the offset the first new event must receive. */
  expectedOffset?: number;
  /** Set only by the Stream DO itself: allows events of the reserved `stream/` domain. */
  system?: boolean;
  /** A processor's own append: may use processor idempotency keys (idempotency-keys.ts). */
  asProcessor?: boolean;
}

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
  | { kind: "duplicate"; tail: number; closed: boolean; producer: { epoch: number; seq: number } }
  | { kind: "already-closed"; tail: number };

export interface CreateRequest {
  name: string;
  path: string;
  contentType: string | null;
  ttlSeconds: number | null;
  expiresAt: number | null;
  close: boolean;
  fork: { source: string; offset: string | null; subOffset: number } | null;
  body: Uint8Array | null;
}

export interface ForkSnapshot {
  contentType: string;
  ttlSeconds: number | null;
  expiresAt: number | null;
  /** Messages 1..base are inherited as they are. */
  base: number;
  /** The materialised sub-offset prefix of the append that starts at base + 1. */
  prefix: StoredMessage[];
}

/** What a stream needs from the streams around it (forks reach their sources by name). */
export interface StreamPeers {
  forkSnapshot(source: string, fork: string, request: ForkSnapshotRequest): Promise<ForkSnapshot>;
  exportMessages(source: string, after: number, upTo: number): Promise<StoredMessage[]>;
  releaseFork(source: string, fork: string): Promise<void>;
}

/** How the hosting Durable Object plugs into the stream's life. */
export interface CoreHooks {
  /** Keeps background work (outbox, deliveries) alive past the current request. */
  background(work: Promise<unknown>): void;
  /** Reduces a committed `stream/` event; runs inside the committing transaction. */
  systemEvent(offset: number, type: SystemEventType, payload: unknown): void;
  /** After a commit that stored messages (deliveries start here). */
  committed(tail: number): void;
  /** Inside the transaction that removes the stream: drop state kept outside the log. */
  purged(): void;
}

export interface ForkSnapshotRequest {
  offset: string | null;
  subOffset: number;
  contentType: string | null;
}

const EXPORT_PAGE = 2_000;

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
        request.body && request.body.byteLength > 0 ? this.parseBody(type, request.body, true) : [];
      this.checkReserved(messages, false);
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
        inherited = await this.copyFrom(request.fork.source, snapshot);
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
    const differences: string[] = [];
    const wantType = request.contentType ?? (request.fork ? null : DEFAULT_CONTENT_TYPE);
    if (wantType !== null && !sameContentType(wantType, meta.content_type))
      differences.push("content type");
    const inheritsExpiry =
      request.fork !== null && request.ttlSeconds === null && request.expiresAt === null;
    if (!inheritsExpiry) {
      if (request.ttlSeconds !== meta.ttl_seconds) differences.push("TTL");
      if (request.ttlSeconds === null && request.expiresAt !== meta.expires_at)
        differences.push("expiry");
    }
    if ((request.fork?.source ?? null) !== meta.forked_from) differences.push("fork source");
    else if (request.fork) {
      if (request.fork.offset !== null && request.fork.offset !== meta.fork_offset)
        differences.push("fork offset");
      if (request.fork.subOffset !== (meta.fork_sub_offset ?? 0))
        differences.push("fork sub-offset");
    }
    if (request.close && meta.closed_at === null) differences.push("closed state");
    if (differences.length > 0) {
      throw conflict(`stream exists with a different ${differences.join(", ")}`, { differences });
    }
    return { created: false, meta };
  }

  private async copyFrom(source: string, snapshot: ForkSnapshot): Promise<StoredMessage[]> {
    const out: StoredMessage[] = [];
    while (out.length < snapshot.base) {
      const page = await this.peers.exportMessages(source, out.length, snapshot.base);
      if (page.length === 0) throw conflict("fork source changed while it was copied");
      out.push(...page);
    }
    return [...out, ...snapshot.prefix];
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
    let prefix: StoredMessage[] = [];
    if (request.subOffset > 0) {
      const record = this.log.appendRecord(base + 1);
      if (record.length === 0)
        throw invalidInput("fork sub-offset: no append starts at the fork offset");
      if (isJsonType(meta.content_type)) {
        if (request.subOffset > record.length) {
          throw invalidInput(
            `fork sub-offset ${request.subOffset} exceeds the ${record.length} messages of that append`,
          );
        }
        prefix = record.slice(0, request.subOffset);
      } else {
        const first = record[0]!;
        const bytes =
          typeof first.body === "string"
            ? new TextEncoder().encode(first.body)
            : new Uint8Array(first.body);
        if (request.subOffset > bytes.byteLength) {
          throw invalidInput(
            `fork sub-offset ${request.subOffset} exceeds the ${bytes.byteLength} bytes of that append`,
          );
        }
        prefix = [
          {
            ...first,
            type: null,
            idempotencyKey: null,
            body: bytes.slice(0, request.subOffset).buffer,
          },
        ];
      }
    }
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
    let producerState: { epoch: number; seq: number } | null = null;
    if (request.producer) {
      const verdict = this.checkProducer(request.producer, meta);
      if (verdict.kind === "duplicate") return verdict;
      producerState = verdict.next;
    }
    if (meta.closed_at !== null) {
      if (request.body === null && !request.producer)
        return { kind: "already-closed", tail: meta.tail };
      // The tail lets the protocol answer Stream-Closed with the final Stream-Next-Offset.
      throw conflict(
        "stream is closed; no more appends are accepted",
        { tail: meta.tail },
        "stream_closed",
      );
    }
    const messages = this.messagesOf(request.body, meta);
    const system = this.checkReserved(messages, request.system === true);
    if (request.asProcessor !== true) checkClientKeys(messages);
    if (request.expectedOffset !== undefined) {
      const next = meta.tail + 1;
      const fresh = messages.some(
        (m) => m.idempotencyKey === null || this.log.offsetOfKey(m.idempotencyKey) === null,
      );
      if (fresh && request.expectedOffset !== next) {
        throw conflict(
          `expectedOffset ${request.expectedOffset} does not match the stream's next offset ${next}`,
          { expectedOffset: request.expectedOffset, nextOffset: next },
          "offset_conflict",
        );
      }
    }
    const seq = request.streamSeq ?? null;
    if (seq !== null && meta.last_stream_seq !== null && seq <= meta.last_stream_seq) {
      throw conflict(
        `Stream-Seq ${JSON.stringify(seq)} is not greater than the last one, ${JSON.stringify(meta.last_stream_seq)}`,
      );
    }
    const result = this.log.transaction(() => {
      const appended = this.log.append(messages, now);
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

  /** The idempotent-producer state machine of PROTOCOL.md §5.2.1 (nothing is written here). */
  private checkProducer(
    claim: ProducerClaim,
    meta: StreamMeta,
  ):
    | { kind: "accept"; next: { epoch: number; seq: number } }
    | Extract<AppendOutcome, { kind: "duplicate" }> {
    const state = this.log.producer(claim.id);
    if (state === null) {
      if (claim.seq !== 0) throw producerGap(0, claim.seq);
      return { kind: "accept", next: { epoch: claim.epoch, seq: 0 } };
    }
    if (claim.epoch < state.epoch) {
      throw forbidden(`producer epoch ${claim.epoch} is stale; current epoch is ${state.epoch}`, {
        producerEpoch: state.epoch,
      });
    }
    if (claim.epoch > state.epoch) {
      if (claim.seq !== 0)
        throw invalidInput(`a new producer epoch must start at Producer-Seq 0, got ${claim.seq}`);
      return { kind: "accept", next: { epoch: claim.epoch, seq: 0 } };
    }
    if (claim.seq <= state.lastSeq) {
      return {
        kind: "duplicate",
        tail: meta.tail,
        closed: meta.closed_at !== null,
        producer: { epoch: state.epoch, seq: state.lastSeq },
      };
    }
    if (claim.seq > state.lastSeq + 1) throw producerGap(state.lastSeq + 1, claim.seq);
    return { kind: "accept", next: { epoch: claim.epoch, seq: claim.seq } };
  }

  /**
   * Reserved `stream/` events may only come from the Stream DO itself, and their payloads
   * must match their schemas. Returns them (with their batch index) for reduction.
   */
  private checkReserved(
    messages: EncodedMessage[],
    system: boolean,
  ): { index: number; type: SystemEventType; payload: unknown }[] {
    const out: { index: number; type: SystemEventType; payload: unknown }[] = [];
    messages.forEach((message, index) => {
      if (!isReservedType(message.type)) return;
      if (!system) {
        throw invalidInput(
          `event type ${message.type} is reserved for the stream itself; use the subscription API`,
          { index },
          "reserved_event_type",
        );
      }
      const type = message.type as SystemEventType;
      const schema = Object.hasOwn(systemEventSchemas, type) ? systemEventSchemas[type] : undefined;
      if (!schema) throw new Error(`unknown system event type ${type}`);
      const payload = (JSON.parse(message.body as string) as { payload: unknown }).payload;
      out.push({ index, type, payload: schema.parse(payload) });
    });
    return out;
  }

  private messagesOf(body: AppendBody, meta: StreamMeta): EncodedMessage[] {
    if (body === null) return [];
    if (body.kind === "messages") {
      if (!isJsonType(meta.content_type)) {
        throw conflict(
          `typed events need an application/json stream; this one is ${meta.content_type}`,
        );
      }
      return body.messages;
    }
    if (body.contentType === null) throw invalidInput("Content-Type is required on an append");
    if (!sameContentType(body.contentType, meta.content_type)) {
      throw conflict(
        `Content-Type ${mediaType(body.contentType)} does not match the stream's ${meta.content_type}`,
      );
    }
    return this.parseBody(meta.content_type, body.bytes, false);
  }

  private parseBody(contentType: string, bytes: Uint8Array, isCreate: boolean): EncodedMessage[] {
    if (!isJsonType(contentType)) return [encodeBytesBody(bytes)];
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
    } catch {
      throw invalidInput("body is not valid UTF-8", undefined, "invalid_json");
    }
    return encodeJsonBody(text, isCreate);
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
    this.log.transaction(() => this.log.touch(now));
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
  async flushOutbox(): Promise<boolean> {
    let pending = false;
    for (const owed of this.log.owed()) {
      try {
        await this.peers.releaseFork(owed.source, owed.fork);
        this.log.transaction(() => this.log.settle(owed.source, owed.fork, true));
      } catch (error) {
        console.error(
          JSON.stringify({ msg: "fork release failed", source: owed.source, error: String(error) }),
        );
        this.log.transaction(() => this.log.settle(owed.source, owed.fork, false));
        pending = true;
      }
    }
    return pending;
  }
}

/** Processor idempotency keys are refused on any append that is not a processor's. */
function checkClientKeys(messages: EncodedMessage[]): void {
  messages.forEach((message, index) => {
    if (message.idempotencyKey !== null && isProcessorKey(message.idempotencyKey)) {
      throw invalidInput(
        `idempotency key ${JSON.stringify(message.idempotencyKey.slice(0, 200))} has the form <processor>/<key>@<offset>, which is reserved for processors' own appends`,
        { index },
        "reserved_idempotency_key",
      );
    }
  });
}

function producerGap(expected: number, received: number): DomainError {
  return conflict(`producer sequence gap: expected ${expected}, received ${received}`, {
    expectedSeq: expected,
    receivedSeq: received,
  });
}
