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
import { callableSchema } from "../callables/descriptor";
import { CallableError } from "../callables/errors";
import { checkCallable, readPolicy } from "../callables/policy";
import { newWebhookSecret } from "../callables/webhook";
import { type Env, readSettings } from "../env";
import { ApiError, badRequest, conflict, notFound } from "../http/errors";
import { type AppendOutcome, type ForkSnapshotRequest, StreamCore, type StreamPeers } from "./core";
import { DEFAULT_DELIVERY, Deliveries } from "./delivery";
import { type StoredMessage, StreamLog, type StreamMeta } from "./log";
import {
  decodeEvent,
  type EncodedMessage,
  type EventInput,
  encodeEvent,
  eventInputSchema,
  type StreamEvent,
} from "./messages";
import { encodeOffset } from "./offsets";
import { handleProtocol, type ProtocolSettings } from "./protocol/handler";
import { type Subscription, SubscriptionTable } from "./subscriptions";
import {
  eventTypesSchema,
  type SubscriptionConfigured,
  startAtSchema,
  subscriptionKeySchema,
} from "./system-events";
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

export const subscriptionInputSchema = z.strictObject({
  key: subscriptionKeySchema,
  callable: callableSchema,
  eventTypes: eventTypesSchema,
  startAt: startAtSchema.default("beginning"),
});
export type SubscriptionInput = z.input<typeof subscriptionInputSchema>;

/** A subscription as the API shows it: configuration and delivery status, never the secret. */
export type SubscriptionStatus = Omit<Subscription, "secret" | "health" | "nextRetryAt"> & {
  lag: number;
  status: Subscription["health"];
  nextRetryAt: string | null;
};

function toStatus(sub: Subscription, tail: number): SubscriptionStatus {
  return {
    key: sub.key,
    callable: sub.callable,
    eventTypes: sub.eventTypes,
    startAt: sub.startAt,
    anchorOffset: sub.anchorOffset,
    cursor: sub.cursor,
    lag: Math.max(0, tail - sub.cursor),
    status: sub.health,
    attempts: sub.attempts,
    lastError: sub.lastError,
    lastErrorRetryable: sub.lastErrorRetryable,
    nextRetryAt: sub.nextRetryAt === null ? null : new Date(sub.nextRetryAt).toISOString(),
  };
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
  readonly #subscriptions: SubscriptionTable;
  readonly #deliveries: Deliveries;
  readonly #protocol: ProtocolSettings;
  /** The alarm as last set by this instance (undefined: not read yet). */
  #alarmAt: number | null | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const peers: StreamPeers = {
      forkSnapshot: (source, fork, request) => this.#peer(source).forkSnapshot(fork, request),
      exportMessages: (source, after, upTo) => this.#peer(source).exportMessages(after, upTo),
      releaseFork: (source, fork) => this.#peer(source).releaseFork(fork),
    };
    const log = new StreamLog(ctx.storage);
    const subscriptions = new SubscriptionTable(ctx.storage.sql);
    const background = (work: Promise<unknown>) =>
      ctx.waitUntil(
        work.catch((error) =>
          console.error(JSON.stringify({ msg: "background work failed", error: String(error) })),
        ),
      );
    this.#subscriptions = subscriptions;
    this.#core = new StreamCore(log, new TailWaiters(), peers, {
      background: (work) => background(work.then(() => this.#armAlarm())),
      systemEvent: (offset, type, payload) => {
        if (type === "stream/subscription-configured")
          subscriptions.configured(offset, payload as SubscriptionConfigured);
        if (type === "stream/subscription-removed")
          subscriptions.removed((payload as { key: string }).key);
      },
      committed: () => queueMicrotask(() => this.#deliveries.kick()),
      purged: () => subscriptions.clear(),
    });
    const settings = readSettings(env);
    this.#protocol = {
      longPollTimeoutMs: settings.LONG_POLL_TIMEOUT_MS,
      sseMaxDurationMs: settings.SSE_MAX_DURATION_MS,
    };
    const deliverySettings = {
      ...DEFAULT_DELIVERY,
      retryBaseMs: settings.DELIVERY_RETRY_BASE_MS,
      retryMaxMs: settings.DELIVERY_RETRY_MAX_MS,
    };
    this.#deliveries = new Deliveries(log, subscriptions, this.#core, {
      env,
      policy: () => readPolicy(env),
      settings: () => deliverySettings,
      background,
      armAlarm: () => this.#armAlarm(),
    });
    // A fresh instance (after an eviction or crash) picks up deliveries that were cut off.
    ctx.waitUntil(Promise.resolve().then(() => this.#deliveries.kick()));
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
    const response = await handleProtocol(this.#core, request, this.#protocol);
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
      const messages = input.map(encodeEvent);
      const outcome = this.#core.append({
        body: { kind: "messages", messages },
        expectedOffset: opts.expectedOffset,
      });
      return this.#committed(outcome, messages);
    });
  }

  async append(event: EventInput, options: AppendOptions = {}): Promise<StreamEvent> {
    const [committed] = await this.appendBatch([event], options);
    return committed!;
  }

  /**
   * The events as committed, in input order. Newly stored ones are decoded from the bodies
   * just written (no read-back); idempotent repeats are read back, as the stored original
   * wins over what was sent again.
   */
  #committed(outcome: AppendOutcome, messages: EncodedMessage[]): StreamEvent[] {
    if (outcome.kind !== "appended") throw new Error(`unexpected append outcome ${outcome.kind}`);
    const byOffset = new Map<number, StreamEvent>();
    return outcome.offsets.map((offset, i) => {
      let event = byOffset.get(offset);
      if (!event) {
        event =
          offset > outcome.previousTail
            ? decodeEvent(offset, messages[i]!.body as string, outcome.at)
            : this.#core.readEvents(offset - 1, 1).events[0]!;
        byOffset.set(offset, event);
      }
      return event;
    });
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

  // ---- subscriptions ------------------------------------------------------------------

  /**
   * Configures a subscription by appending `stream/subscription-configured`. An identical
   * repeat answers `created: false`; a different configuration under the same key is a 409.
   * Webhook subscriptions get a signing secret, returned here once and never again.
   */
  configureSubscription(
    input: SubscriptionInput,
  ): Promise<{ created: boolean; subscription: SubscriptionStatus; secret?: string }> {
    return this.#rpc(() => {
      const wanted = parse(subscriptionInputSchema, input, "subscription");
      try {
        checkCallable(wanted.callable, readPolicy(this.env));
      } catch (error) {
        if (error instanceof CallableError)
          throw badRequest(error.message, { kind: error.kind }, "validation_failed");
        throw error;
      }
      const meta = this.#core.live(Date.now());
      if (typeof wanted.startAt === "number" && wanted.startAt > meta.tail) {
        throw badRequest(
          `startAt ${wanted.startAt} is beyond the stream's last offset ${meta.tail}`,
        );
      }
      const existing = this.#subscriptions.get(wanted.key);
      if (existing) {
        if (!SubscriptionTable.same(existing, wanted)) {
          throw conflict(`subscription ${wanted.key} exists with a different configuration`);
        }
        return { created: false, subscription: toStatus(existing, meta.tail) };
      }
      const secret = wanted.callable.kind === "webhook" ? newWebhookSecret() : undefined;
      this.#core.log.transaction(() => {
        this.#core.append({
          body: {
            kind: "messages",
            messages: [encodeEvent({ type: "stream/subscription-configured", payload: wanted })],
          },
          system: true,
        });
        if (secret) this.#subscriptions.setSecret(wanted.key, secret);
      });
      const created = this.#subscriptions.get(wanted.key)!;
      return {
        created: true,
        subscription: toStatus(created, this.#core.log.meta()!.tail),
        ...(secret ? { secret } : {}),
      };
    });
  }

  removeSubscription(key: string): Promise<void> {
    return this.#rpc(() => {
      const k = parse(subscriptionKeySchema, key, "subscription key");
      this.#core.live(Date.now());
      if (!this.#subscriptions.get(k)) throw notFound(`subscription ${k} not found`);
      this.#core.append({
        body: {
          kind: "messages",
          messages: [encodeEvent({ type: "stream/subscription-removed", payload: { key: k } })],
        },
        system: true,
      });
    });
  }

  /** Starts any delivery that is due now (subscribers call this when they restart). */
  resumeDeliveries(): Promise<void> {
    return this.#rpc(() => this.#deliveries.kick());
  }

  listSubscriptions(): Promise<SubscriptionStatus[]> {
    return this.#rpc(() => {
      const meta = this.#core.live(Date.now());
      return this.#subscriptions.all().map((sub) => toStatus(sub, meta.tail));
    });
  }

  /**
   * Bytes this stream stores: its SQLite database, and its stored event bodies (in all and per
   * event type). An operator's measurement: it reads the whole log.
   */
  storageStats(): Promise<{
    databaseSize: number;
    eventBytes: number;
    events: number;
    byType: { type: string | null; events: number; bytes: number }[];
  }> {
    return this.#rpc(() => {
      const rows = this.ctx.storage.sql
        .exec<{ type: string | null; bytes: number | null; n: number }>(
          "SELECT type, sum(length(body)) AS bytes, count(*) AS n FROM stream_messages GROUP BY type",
        )
        .toArray();
      const byType = rows.map((r) => ({ type: r.type, events: r.n, bytes: r.bytes ?? 0 }));
      return {
        databaseSize: this.ctx.storage.sql.databaseSize,
        eventBytes: rows.reduce((sum, r) => sum + (r.bytes ?? 0), 0),
        events: rows.reduce((sum, r) => sum + r.n, 0),
        byType,
      };
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

  // ---- alarm: TTL expiry, outbox and delivery retries ---------------------------------

  override async alarm(): Promise<void> {
    this.#alarmAt = null; // this alarm is consumed
    this.#core.state(Date.now());
    this.#deliveries.kick();
    const pending = await this.#core.flushOutbox();
    await this.#armAlarm(pending);
  }

  /**
   * One alarm serves every timer: expiry, outbox retries, delivery retries and watchdog.
   * Runs after every request, so it reads storage only when there is something to schedule.
   */
  async #armAlarm(outboxPending = this.#core.log.owedCount() > 0): Promise<void> {
    const meta = this.#core.log.meta();
    const now = Date.now();
    let next = Number.POSITIVE_INFINITY;
    if (meta && !meta.soft_deleted && meta.expires_at !== null)
      next = Math.min(next, meta.expires_at);
    if (outboxPending) next = Math.min(next, now + 5_000);
    const delivery = this.#deliveries.nextWake(now);
    if (delivery !== null) next = Math.min(next, delivery);
    if (next === Number.POSITIVE_INFINITY) return;
    if (this.#alarmAt === undefined) this.#alarmAt = await this.ctx.storage.getAlarm();
    const current = this.#alarmAt;
    if (current === null || current > next || current < now - 60_000) {
      await this.ctx.storage.setAlarm(next);
      this.#alarmAt = next;
    }
  }
}
