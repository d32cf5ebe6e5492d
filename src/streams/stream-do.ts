/**
 * One Durable Object per stream. It exposes two doors onto the same StreamCore:
 * - typed RPC (`create`, `appendBatch`, `append`, `read`, `head`, `close`, …) for the worker
 *   and for other Durable Objects, and
 * - `fetch`, the Durable Streams HTTP protocol, for any Durable Streams client.
 * Errors thrown over RPC are ApiErrors flattened into their message (see http/errors.ts);
 * callers rebuild them with `ApiError.from`.
 */
import { DurableObject } from "cloudflare:workers";
import { z } from "zod";
import { type Env, readSettings } from "../env";
import { ApiError, badRequest } from "../http/errors";
import { type AppendOutcome, type ForkSnapshotRequest, StreamCore, type StreamPeers } from "./core";
import { type StoredMessage, StreamLog, type StreamMeta } from "./log";
import { type EventInput, encodeEvent, eventInputSchema, type StreamEvent } from "./messages";
import { encodeOffset } from "./offsets";
import { handleProtocol } from "./protocol/handler";
import { TailWaiters } from "./tail-waiters";

export interface StreamHead {
  path: string;
  contentType: string;
  /** Offset of the last event (0 when empty). */
  lastOffset: number;
  /** Offset the next event will receive. */
  nextOffset: number;
  /** Stream-Next-Offset on the wire. */
  wireOffset: string;
  eventCount: number;
  closed: boolean;
  closeStatus: "ended" | "failed" | null;
  closeReason: string | null;
  createdAt: string;
  expiresAt: string | null;
}

const createOptionsSchema = z.strictObject({
  contentType: z.string().min(1).max(200).default("application/json"),
  ttlSeconds: z.number().int().nonnegative().optional(),
  expiresAt: z.string().datetime({ offset: true }).optional(),
});
export type CreateOptions = z.input<typeof createOptionsSchema>;

const appendOptionsSchema = z.strictObject({
  expectedOffset: z.number().int().positive().optional(),
});
export type AppendOptions = z.input<typeof appendOptionsSchema>;

const readOptionsSchema = z.strictObject({
  after: z.number().int().nonnegative().default(0),
  limit: z.number().int().min(1).max(10_000).default(1_000),
});
export type ReadOptions = z.input<typeof readOptionsSchema>;

const closeOptionsSchema = z.strictObject({
  status: z.enum(["ended", "failed"]).default("ended"),
  reason: z.string().max(2_000).nullable().default(null),
});
export type CloseOptions = z.input<typeof closeOptionsSchema>;

/** Parses RPC input with zod, turning a failure into a 400 that names the offending path. */
function parse<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue?.path.length ? issue.path.join(".") : "(root)";
    throw badRequest(
      `invalid ${what} at ${where}: ${issue?.message}`,
      { issues: result.error.issues },
      "validation_failed",
    );
  }
  return result.data;
}

function toHead(meta: StreamMeta): StreamHead {
  return {
    path: meta.path,
    contentType: meta.content_type,
    lastOffset: meta.tail,
    nextOffset: meta.tail + 1,
    wireOffset: encodeOffset(meta.tail),
    eventCount: meta.tail,
    closed: meta.closed_at !== null,
    closeStatus: meta.close_status,
    closeReason: meta.close_reason,
    createdAt: new Date(meta.created_at).toISOString(),
    expiresAt: meta.expires_at === null ? null : new Date(meta.expires_at).toISOString(),
  };
}

export class StreamDurableObject extends DurableObject<Env> {
  readonly #core: StreamCore;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const peers: StreamPeers = {
      forkSnapshot: (source, fork, request) => this.#peer(source).forkSnapshot(fork, request),
      exportMessages: (source, after, upTo) => this.#peer(source).exportMessages(after, upTo),
      releaseFork: (source, fork) => this.#peer(source).releaseFork(fork),
    };
    this.#core = new StreamCore(new StreamLog(ctx.storage), new TailWaiters(), peers, (work) =>
      ctx.waitUntil(work.then((pending) => (pending ? this.#armAlarm() : undefined))),
    );
  }

  #peer(name: string) {
    return this.env.STREAMS.get(this.env.STREAMS.idFromName(name));
  }

  /** Runs an RPC body, flattening ApiErrors so that they survive the hop. */
  async #rpc<T>(fn: () => T | Promise<T>): Promise<T> {
    try {
      const result = await fn();
      await this.#armAlarm();
      return result;
    } catch (error) {
      const known = ApiError.from(error);
      if (known instanceof ApiError) throw known.toRpcError();
      throw error;
    }
  }

  override async fetch(request: Request): Promise<Response> {
    const settings = readSettings(this.env);
    const response = await handleProtocol(this.#core, request, {
      longPollTimeoutMs: settings.LONG_POLL_TIMEOUT_MS,
      sseMaxDurationMs: settings.SSE_MAX_DURATION_MS,
    });
    await this.#armAlarm();
    return response;
  }

  // ---- typed RPC ----------------------------------------------------------------------

  /** Creates the stream (idempotent for an identical configuration). */
  create(
    name: string,
    path: string,
    options: CreateOptions = {},
  ): Promise<{ created: boolean; head: StreamHead }> {
    return this.#rpc(async () => {
      const opts = parse(createOptionsSchema, options, "create options");
      const result = await this.#core.create({
        name,
        path,
        contentType: opts.contentType,
        ttlSeconds: opts.ttlSeconds ?? null,
        expiresAt: opts.expiresAt ? Date.parse(opts.expiresAt) : null,
        close: false,
        fork: null,
        body: null,
      });
      return { created: result.created, head: toHead(result.meta) };
    });
  }

  /** Appends typed events atomically; repeated idempotency keys return the original events. */
  appendBatch(events: EventInput[], options: AppendOptions = {}): Promise<StreamEvent[]> {
    return this.#rpc(() => {
      const input = parse(z.array(eventInputSchema).min(1).max(1_000), events, "events");
      const opts = parse(appendOptionsSchema, options, "append options");
      const outcome = this.#core.append({
        body: { kind: "messages", messages: input.map(encodeEvent) },
        expectedOffset: opts.expectedOffset,
      });
      return this.#committed(outcome);
    });
  }

  async append(event: EventInput, options: AppendOptions = {}): Promise<StreamEvent> {
    const [committed] = await this.appendBatch([event], options);
    return committed!;
  }

  #committed(outcome: AppendOutcome): StreamEvent[] {
    if (outcome.kind !== "appended") throw new Error(`unexpected append outcome ${outcome.kind}`);
    const byOffset = new Map<number, StreamEvent>();
    const offsets = [...new Set(outcome.offsets)].sort((a, b) => a - b);
    const low = offsets[0]!;
    const high = offsets.at(-1)!;
    const contiguous = high - low + 1 === offsets.length;
    const events = contiguous
      ? this.#core.readEvents(low - 1, offsets.length).events
      : offsets.map((o) => this.#core.readEvents(o - 1, 1).events[0]!);
    for (const event of events) byOffset.set(event.offset, event);
    return outcome.offsets.map((o) => byOffset.get(o)!);
  }

  /** Events with offset > after, oldest first. */
  read(
    options: ReadOptions = {},
  ): Promise<{ events: StreamEvent[]; head: StreamHead; upToDate: boolean }> {
    return this.#rpc(() => {
      const opts = parse(readOptionsSchema, options, "read options");
      const { events, meta } = this.#core.readEvents(opts.after, opts.limit);
      const last = events.at(-1)?.offset ?? opts.after;
      return { events, head: toHead(meta), upToDate: last === meta.tail };
    });
  }

  getByIdempotencyKey(key: string): Promise<StreamEvent | null> {
    return this.#rpc(() => {
      const k = parse(z.string().min(1).max(512), key, "idempotency key");
      this.#core.live(Date.now());
      const offset = this.#core.log.offsetOfKey(k);
      return offset === null ? null : this.#core.readEvents(offset - 1, 1).events[0]!;
    });
  }

  head(): Promise<StreamHead> {
    return this.#rpc(() => toHead(this.#core.live(Date.now())));
  }

  /** Closes the stream. Idempotent: the first terminal writer's status and reason stay. */
  close(options: CloseOptions = {}): Promise<StreamHead> {
    return this.#rpc(() => {
      const opts = parse(closeOptionsSchema, options, "close options");
      return toHead(this.#core.close(opts.status, opts.reason));
    });
  }

  // ---- stream-to-stream RPC (forks) ---------------------------------------------------

  forkSnapshot(fork: string, request: ForkSnapshotRequest) {
    return this.#rpc(() => this.#core.forkSnapshot(fork, request));
  }

  exportMessages(after: number, upTo: number): Promise<StoredMessage[]> {
    return this.#rpc(() => this.#core.exportMessages(after, upTo));
  }

  releaseFork(fork: string): Promise<void> {
    return this.#rpc(() => this.#core.releaseFork(fork));
  }

  // ---- alarm: TTL expiry and outbox retries -------------------------------------------

  override async alarm(): Promise<void> {
    this.#core.state(Date.now());
    const pending = await this.#core.flushOutbox();
    await this.#armAlarm(pending);
  }

  /** One alarm serves every timer: the stream's expiry and the outbox's retry. */
  async #armAlarm(outboxPending = this.#core.log.owed().length > 0): Promise<void> {
    const meta = this.#core.log.meta();
    const times: number[] = [];
    if (meta && !meta.soft_deleted && meta.expires_at !== null) times.push(meta.expires_at);
    if (outboxPending) times.push(Date.now() + 5_000);
    if (times.length === 0) return;
    const next = Math.min(...times);
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > next || current < Date.now() - 60_000)
      await this.ctx.storage.setAlarm(next);
  }
}
