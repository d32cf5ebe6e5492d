/**
 * One Durable Object per stream. It exposes two doors onto the same StreamCore:
 * - typed RPC (`create`, `appendBatch`, `append`, `read`, `head`, `close`, …) for the worker
 *   and for other Durable Objects, and
 * - `fetch`, the Durable Streams HTTP protocol, for any Durable Streams client.
 * RPC methods answer a result envelope (src/rpc/result.ts): expected errors are values, not
 * exceptions that workerd would log as uncaught; callers use `rpcClient(stub)` or `unwrap`.
 * The RPC surface is declared once, `StreamRpc` (stream-rpc.ts). The class knows no app: the
 * read views its HTTP face serves (protocol/views.ts) come from the subclass the worker
 * exports (src/stream-object.ts).
 */
import { DurableObject } from "cloudflare:workers";
import { z } from "zod";
import { type Env, readCallablePolicy, readSettings } from "../env";
import { DomainError, invalidInput } from "../errors/domain";
import { type RpcResult, rpcClient, serveRpc } from "../rpc/result";
import { type AppendOutcome, StreamCore } from "./core";
import { DEFAULT_DELIVERY, Deliveries } from "./delivery";
import { checkTtl, EXPIRY_CEILING_MS, parseExpiresAt } from "./expiry";
import type { ForkSnapshot, ForkSnapshotRequest, StreamPeers } from "./forks";
import { type StoredMessage, StreamLog } from "./log";
import {
  decodeEvent,
  type EncodedMessage,
  type EventInput,
  encodeEvent,
  eventInputSchema,
  type StreamEvent,
} from "./messages";
import { ChunkCache } from "./protocol/chunks";
import { handleProtocol, type ProtocolContext } from "./protocol/handler";
import { NO_VIEWS, type ReadViews } from "./protocol/views";
import {
  type AppendOptions,
  appendOptionsSchema,
  type CloseOptions,
  type CreateOptions,
  closeOptionsSchema,
  createOptionsSchema,
  type FeedReport,
  feedReportSchema,
  parse,
  type ReadOptions,
  readOptionsSchema,
  type SkipOptions,
  type StorageStats,
  type StreamHead,
  type StreamRpc,
  type SubscriptionInput,
  type SubscriptionStatus,
  toHead,
  toStatus,
} from "./stream-rpc";
import { streamStub } from "./stub";
import { SubscriptionAdmin } from "./subscription-admin";
import { SubscriptionTable } from "./subscriptions";
import type { Principal, SubscriptionConfigured, SystemEventPayload } from "./system-events";
import { TailWaiters } from "./tail-waiters";

/** Built once: a zod schema compiles its checks on first use, per instance. */
const eventBatchSchema = z.array(eventInputSchema).min(1).max(1_000);
const idempotencyKeySchema = z.string().min(1).max(512);

export class StreamObject extends DurableObject<Env> implements StreamRpc {
  readonly #core: StreamCore;
  readonly #subscriptions: SubscriptionTable;
  readonly #deliveries: Deliveries;
  readonly #admin: SubscriptionAdmin;
  readonly #protocol: ProtocolContext;
  /** The alarm as last set by this instance (undefined: not read yet). */
  #alarmAt: number | null | undefined;

  constructor(ctx: DurableObjectState, env: Env, views: ReadViews = NO_VIEWS) {
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
        if (type === "stream/subscriber-resumed")
          subscriptions.resumed((payload as { key: string }).key);
        if (type === "stream/subscriber-skipped") {
          const skipped = payload as SystemEventPayload<"stream/subscriber-skipped">;
          subscriptions.skipped(skipped.key, skipped.cursor);
        }
      },
      stored: (from, to, types, selfFeed) => this.#deliveries.stored(from, to, types, selfFeed),
      committed: (tail) => this.#deliveries.committed(tail),
      purged: () => subscriptions.clear(),
    });
    const settings = readSettings(env);
    this.#protocol = {
      core: this.#core,
      chunks: new ChunkCache(),
      views,
      settings: {
        longPollTimeoutMs: settings.LONG_POLL_TIMEOUT_MS,
        sseMaxDurationMs: settings.SSE_MAX_DURATION_MS,
      },
    };
    this.#admin = new SubscriptionAdmin(this.#core, subscriptions, env);
    const deliverySettings = {
      ...DEFAULT_DELIVERY,
      retryBaseMs: settings.DELIVERY_RETRY_BASE_MS,
      retryMaxMs: settings.DELIVERY_RETRY_MAX_MS,
      maxAttempts: settings.DELIVERY_MAX_ATTEMPTS,
      feedLeaseMs: settings.DELIVERY_FEED_LEASE_MS,
    };
    this.#deliveries = new Deliveries(log, subscriptions, this.#core, {
      env,
      policy: () => readCallablePolicy(env),
      settings: () => deliverySettings,
      background,
      armAlarm: () => this.#armAlarm(),
    });
    // A fresh instance (after an eviction or crash) picks up deliveries that were cut off.
    ctx.waitUntil(Promise.resolve().then(() => this.#deliveries.kick()));
  }

  #peer(name: string) {
    return rpcClient(streamStub(this.env, name));
  }

  /** Runs an RPC body and answers its result envelope (expected errors as values). */
  #rpc<T>(fn: () => T | Promise<T>): Promise<RpcResult<Awaited<T>>> {
    return serveRpc(this.#label(), async () => {
      const result = await fn();
      await this.#armAlarm();
      return result;
    });
  }

  /** The stream's path, for logs; a corrupt metadata row is answered (corrupt_record), not thrown here. */
  #label(): string {
    try {
      return `stream ${this.#core.log.meta()?.path ?? "(new)"}`;
    } catch {
      return "stream (unreadable metadata)";
    }
  }

  override async fetch(request: Request): Promise<Response> {
    const response = await handleProtocol(this.#protocol, request);
    try {
      await this.#armAlarm();
    } catch (error) {
      // A refusal already answers why (e.g. corrupt_record, logged where it was found); the
      // alarm, which reads the same rows, must not replace that answer with a bare 500.
      if (!(error instanceof DomainError) || response.ok) throw error;
    }
    return response;
  }

  // ---- typed RPC ----------------------------------------------------------------------

  /** Creates the stream (idempotent for an identical configuration). */
  create(
    name: string,
    path: string,
    options: CreateOptions = {},
  ): Promise<RpcResult<{ created: boolean; head: StreamHead }>> {
    return this.#rpc(async () => {
      const opts = parse(createOptionsSchema, options, "create options");
      if (opts.ttlSeconds !== undefined && opts.expiresAt !== undefined)
        throw invalidInput("give either ttlSeconds or expiresAt, not both");
      const now = Date.now();
      const result = await this.#core.create({
        name,
        path,
        contentType: opts.contentType,
        ttlSeconds:
          opts.ttlSeconds === undefined
            ? null
            : checkTtl(opts.ttlSeconds, "ttlSeconds", "validation_failed"),
        expiresAt:
          opts.expiresAt === undefined
            ? null
            : parseExpiresAt(opts.expiresAt, now, "expiresAt", "validation_failed"),
        close: false,
        fork: null,
        body: null,
      });
      return { created: result.created, head: toHead(result.meta) };
    });
  }

  /** Appends typed events atomically; repeated idempotency keys return the original events. */
  appendBatch(
    events: EventInput[],
    options: AppendOptions = {},
  ): Promise<RpcResult<StreamEvent[]>> {
    return this.#rpc(() => {
      const input = parse(eventBatchSchema, events, "events");
      const opts = parse(appendOptionsSchema, options, "append options");
      const messages = input.map(encodeEvent);
      const outcome = this.#core.append({
        body: { kind: "messages", messages },
        expectedOffset: opts.expectedOffset,
        asProcessor: opts.asProcessor === true,
        selfFeed: opts.selfFeed,
        onlyNew: opts.onlyNew === true,
      });
      return this.#committed(outcome, messages);
    });
  }

  async append(event: EventInput, options: AppendOptions = {}): Promise<RpcResult<StreamEvent>> {
    const result = await this.appendBatch([event], options);
    return result.ok ? { ok: true, value: result.value[0]! } : result;
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
  ): Promise<RpcResult<{ events: StreamEvent[]; head: StreamHead; upToDate: boolean }>> {
    return this.#rpc(() => {
      const opts = parse(readOptionsSchema, options, "read options");
      const { events, meta } = this.#core.readEvents(opts.after, opts.limit);
      const last = events.at(-1)?.offset ?? opts.after;
      return { events, head: toHead(meta), upToDate: last === meta.tail };
    });
  }

  getByIdempotencyKey(key: string): Promise<RpcResult<StreamEvent | null>> {
    return this.#rpc(() => {
      const k = parse(idempotencyKeySchema, key, "idempotency key");
      this.#core.live(Date.now());
      const offset = this.#core.log.offsetOfKey(k);
      return offset === null ? null : this.#core.readEvents(offset - 1, 1).events[0]!;
    });
  }

  head(): Promise<RpcResult<StreamHead>> {
    return this.#rpc(() => toHead(this.#core.live(Date.now())));
  }

  /** Closes the stream. Idempotent: the first terminal writer's status and reason stay. */
  close(options: CloseOptions = {}): Promise<RpcResult<StreamHead>> {
    return this.#rpc(() => {
      const opts = parse(closeOptionsSchema, options, "close options");
      return toHead(this.#core.close(opts.status, opts.reason));
    });
  }

  // ---- subscriptions (subscription-admin.ts) ------------------------------------------

  /**
   * Configures a subscription by appending `stream/subscription-configured`. An identical
   * repeat answers `created: false`; a different configuration under the same key is a 409.
   * Webhook subscriptions get a signing secret, returned here once and never again.
   */
  configureSubscription(
    input: SubscriptionInput,
  ): Promise<RpcResult<{ created: boolean; subscription: SubscriptionStatus; secret?: string }>> {
    return this.#rpc(() => this.#admin.configure(input));
  }

  removeSubscription(key: string): Promise<RpcResult<void>> {
    return this.#rpc(() => this.#admin.remove(key));
  }

  /**
   * Resumes a parked subscription: `stream/subscriber-resumed` is appended and delivery
   * retries from the cursor at once (the stuck event first), with a fresh attempt budget.
   * Unknown key → 404; a subscription that is not parked → 409.
   */
  resumeSubscription(key: string, by: Principal): Promise<RpcResult<SubscriptionStatus>> {
    return this.#rpc(() => this.#admin.resume(key, by));
  }

  /**
   * Skips what a parked subscription is stuck on (the stuck event, named with the principal
   * in `stream/subscriber-skipped`); with `offset`, only if that is the stuck offset (409).
   */
  skipSubscription(
    key: string,
    by: Principal,
    options: SkipOptions = {},
  ): Promise<RpcResult<{ skipped: number[]; subscription: SubscriptionStatus }>> {
    return this.#rpc(() => this.#admin.skip(key, by, options));
  }

  /**
   * Starts any delivery that is due now (subscribers call this when they restart). A restarted
   * writer no longer feeds itself: every lease ends (feed-leases.ts).
   */
  resumeDeliveries(): Promise<RpcResult<void>> {
    return this.#rpc(() => this.#deliveries.resume());
  }

  /**
   * A self-feeding subscriber's acknowledgements and released leases, when it has no append
   * to carry them (feed-leases.ts). Acks of another configuration (anchor) are ignored.
   */
  acknowledgeFeeds(report: FeedReport): Promise<RpcResult<void>> {
    return this.#rpc(() => {
      this.#core.live(Date.now());
      this.#deliveries.acknowledge(parse(feedReportSchema, report, "feed report"));
    });
  }

  listSubscriptions(): Promise<RpcResult<SubscriptionStatus[]>> {
    return this.#rpc(() => {
      const meta = this.#core.live(Date.now());
      return this.#subscriptions.all().map((sub) => toStatus(sub, meta.tail));
    });
  }

  /**
   * Bytes this stream stores: its SQLite database, and its stored event bodies (in all and per
   * event type). An operator's measurement: it reads the whole log.
   */
  storageStats(): Promise<RpcResult<StorageStats>> {
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

  forkSnapshot(fork: string, request: ForkSnapshotRequest): Promise<RpcResult<ForkSnapshot>> {
    return this.#rpc(() => this.#core.forkSnapshot(fork, request));
  }

  exportMessages(after: number, upTo: number): Promise<RpcResult<StoredMessage[]>> {
    return this.#rpc(() => this.#core.exportMessages(after, upTo));
  }

  releaseFork(fork: string): Promise<RpcResult<void>> {
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
      next = Math.min(next, meta.expires_at, EXPIRY_CEILING_MS); // never a date the platform refuses
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
