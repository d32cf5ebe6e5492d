/**
 * One Durable Object per stream. It exposes two doors onto the same StreamCore:
 * - typed RPC (`create`, `appendBatch`, `append`, `read`, `head`, `close`, …) for the worker
 *   and for other Durable Objects, and
 * - `fetch`, the Durable Streams HTTP protocol, for any Durable Streams client.
 * RPC methods answer a result envelope (src/rpc/result.ts): expected errors are values, not
 * exceptions that workerd would log as uncaught; callers use `rpcClient(stub)` or `unwrap`.
 */
import { DurableObject } from "cloudflare:workers";
import { z } from "zod";
import { CallableError } from "../callables/errors";
import { resolveTarget } from "../callables/invoke";
import { checkCallable, readPolicy } from "../callables/policy";
import { newWebhookSecret } from "../callables/webhook";
import { type Env, readSettings } from "../env";
import { badRequest, conflict, notFound } from "../http/errors";
import { type RpcResult, rpcClient, serveRpc } from "../rpc/result";
import { type AppendOutcome, StreamCore } from "./core";
import { DEFAULT_DELIVERY, Deliveries, matches } from "./delivery";
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
import { handleProtocol, type ProtocolSettings } from "./protocol/handler";
import {
  type AppendOptions,
  appendOptionsSchema,
  type CloseOptions,
  type CreateOptions,
  closeOptionsSchema,
  createOptionsSchema,
  parse,
  type ReadOptions,
  readOptionsSchema,
  type SkipOptions,
  type StorageStats,
  type StreamHead,
  type StreamRpc,
  type SubscriptionInput,
  type SubscriptionStatus,
  skipOptionsSchema,
  subscriptionInputSchema,
  toHead,
  toStatus,
} from "./stream-rpc";
import { streamStub } from "./stub";
import { type Subscription, SubscriptionTable } from "./subscriptions";
import {
  type Principal,
  principalSchema,
  type SubscriptionConfigured,
  type SystemEventPayload,
  subscriptionKeySchema,
} from "./system-events";
import { TailWaiters } from "./tail-waiters";

export class StreamDurableObject extends DurableObject<Env> implements StreamRpc {
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
        if (type === "stream/subscriber-resumed")
          subscriptions.resumed((payload as { key: string }).key);
        if (type === "stream/subscriber-skipped") {
          const skipped = payload as SystemEventPayload<"stream/subscriber-skipped">;
          subscriptions.skipped(skipped.key, skipped.cursor);
        }
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
      maxAttempts: settings.DELIVERY_MAX_ATTEMPTS,
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
    return rpcClient(streamStub(this.env, name));
  }

  /** Runs an RPC body and answers its result envelope (expected errors as values). */
  #rpc<T>(fn: () => T | Promise<T>): Promise<RpcResult<Awaited<T>>> {
    return serveRpc(`stream ${this.#core.log.meta()?.path ?? "(new)"}`, async () => {
      const result = await fn();
      await this.#armAlarm();
      return result;
    });
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
  ): Promise<RpcResult<{ created: boolean; head: StreamHead }>> {
    return this.#rpc(async () => {
      const opts = parse(createOptionsSchema, options, "create options");
      if (opts.ttlSeconds !== undefined && opts.expiresAt !== undefined)
        throw badRequest("give either ttlSeconds or expiresAt, not both");
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
      const input = parse(z.array(eventInputSchema).min(1).max(1_000), events, "events");
      const opts = parse(appendOptionsSchema, options, "append options");
      const messages = input.map(encodeEvent);
      const outcome = this.#core.append({
        body: { kind: "messages", messages },
        expectedOffset: opts.expectedOffset,
        asProcessor: opts.asProcessor === true,
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
      const k = parse(z.string().min(1).max(512), key, "idempotency key");
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

  // ---- subscriptions ------------------------------------------------------------------

  /**
   * Configures a subscription by appending `stream/subscription-configured`. An identical
   * repeat answers `created: false`; a different configuration under the same key is a 409.
   * Webhook subscriptions get a signing secret, returned here once and never again.
   */
  configureSubscription(
    input: SubscriptionInput,
  ): Promise<RpcResult<{ created: boolean; subscription: SubscriptionStatus; secret?: string }>> {
    return this.#rpc(() => {
      const wanted = parse(subscriptionInputSchema, input, "subscription");
      try {
        checkCallable(wanted.callable, readPolicy(this.env));
        if (wanted.callable.kind !== "webhook") resolveTarget(wanted.callable, this.env);
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

  removeSubscription(key: string): Promise<RpcResult<void>> {
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

  /** A parked subscription, or a 404 / 409 that says why there is none. */
  #parked(key: string): Subscription & { stuckOffset: number; stuckThrough: number } {
    const sub = this.#subscriptions.get(key);
    if (!sub) throw notFound(`subscription ${key} not found`);
    if (sub.health !== "parked" || sub.stuckOffset === null || sub.stuckThrough === null) {
      throw conflict(`subscription ${key} is not parked (it is ${sub.health})`, {
        status: sub.health,
      });
    }
    return sub as Subscription & { stuckOffset: number; stuckThrough: number };
  }

  #appendSystem(event: Parameters<typeof encodeEvent>[0]): void {
    this.#core.append({ body: { kind: "messages", messages: [encodeEvent(event)] }, system: true });
  }

  /**
   * Resumes a parked subscription: `stream/subscriber-resumed` is appended and delivery
   * retries from the cursor at once (the stuck event first), with a fresh attempt budget.
   * Unknown key → 404; a subscription that is not parked → 409.
   */
  resumeSubscription(key: string, by: Principal): Promise<RpcResult<SubscriptionStatus>> {
    return this.#rpc(() => {
      const k = parse(subscriptionKeySchema, key, "subscription key");
      const principal = parse(principalSchema, by, "principal");
      this.#core.live(Date.now());
      const sub = this.#parked(k);
      this.#appendSystem({
        type: "stream/subscriber-resumed",
        payload: { key: k, cursor: sub.cursor, by: principal },
      });
      return toStatus(this.#subscriptions.get(k)!, this.#core.log.meta()!.tail);
    });
  }

  /**
   * Skips what a parked subscription is stuck on: its cursor moves past the stuck event (a
   * single event, since failing subscriptions are retried one event at a time; a batch only
   * when the very first attempt parked it) and `stream/subscriber-skipped` names exactly the
   * skipped offsets and the principal. Later events are delivered as usual. With `offset`,
   * the skip happens only if that is the stuck offset (409 otherwise).
   */
  skipSubscription(
    key: string,
    by: Principal,
    options: SkipOptions = {},
  ): Promise<RpcResult<{ skipped: number[]; subscription: SubscriptionStatus }>> {
    return this.#rpc(() => {
      const k = parse(subscriptionKeySchema, key, "subscription key");
      const principal = parse(principalSchema, by, "principal");
      const opts = parse(skipOptionsSchema, options, "skip options");
      this.#core.live(Date.now());
      const sub = this.#parked(k);
      if (opts.offset !== undefined && opts.offset !== sub.stuckOffset) {
        throw conflict(
          `subscription ${k} is stuck on offset ${sub.stuckOffset}, not ${opts.offset}`,
          { stuckOffset: sub.stuckOffset, stuckThrough: sub.stuckThrough },
        );
      }
      const span = sub.stuckThrough - sub.cursor;
      const skipped = this.#core.log
        .read(sub.cursor, sub.stuckThrough, span)
        .filter((m) => matches(sub.eventTypes, m.type))
        .map((m) => m.offset);
      if (skipped.length === 0) throw new Error(`parked subscription ${k} has no stuck event`);
      this.#appendSystem({
        type: "stream/subscriber-skipped",
        payload: {
          key: k,
          offsets: skipped,
          from: sub.cursor,
          cursor: sub.stuckThrough,
          by: principal,
          reason: opts.reason,
        },
      });
      return {
        skipped,
        subscription: toStatus(this.#subscriptions.get(k)!, this.#core.log.meta()!.tail),
      };
    });
  }

  /** Starts any delivery that is due now (subscribers call this when they restart). */
  resumeDeliveries(): Promise<RpcResult<void>> {
    return this.#rpc(() => this.#deliveries.kick());
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
