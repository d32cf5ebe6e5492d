/**
 * Push delivery to subscriptions. After each commit (and on every alarm) each subscription
 * with matching events past its durable cursor gets one batch at a time: filtered by event
 * type, ordered, bounded by count and bytes. The subscriber answers with the offset it has
 * durably processed and the cursor moves there (never backwards, never past the batch).
 * A caught-up, healthy subscription that consumes nothing of a commit is moved past it in
 * the commit's own transaction (stored), so most commits start no run for most of them; and
 * a subscriber that feeds itself what it appends holds a lease instead of being delivered its
 * own events back (feed-leases.ts).
 *
 * Nothing lives only in memory: the cursor, health and retry time are in SQLite, and while
 * any subscription is behind the alarm stays armed (a watchdog), so an eviction at any point
 * — even mid-call — only means the batch is delivered again. Failures back off exponentially
 * (capped, jittered) on the alarm; a failing subscriber never blocks appends or the others.
 * Health transitions are written to the stream as `stream/subscriber-failed|recovered`.
 *
 * Poison events: once a subscription fails, its retries carry one event only, so the event
 * it is stuck on is known exactly. After `maxAttempts` failed attempts (or at once, for a
 * failure that retrying cannot fix) it is parked: `stream/subscriber-parked` names the
 * error and the stuck offset, and it gets no delivery (and no alarm) until an operator
 * resumes it or skips the stuck event (stream-do.ts).
 */

import { backoffMs } from "../backoff";
import { CallableError } from "../callables/errors";
import { invokeCallable } from "../callables/invoke";
import type { CallablePolicy } from "../callables/policy";
import { RETRYABLE } from "../errors/domain";
import { isRpcResult } from "../rpc/result";
import { trace } from "../trace";
import type { StreamCore } from "./core";
import { FeedLeases } from "./feed-leases";
import { failed, parked, recovered } from "./health-events";
import type { StreamLog, StreamMeta } from "./log";
import { decodeEvent, encodeEvent, type StreamEvent } from "./messages";
import type { FeedAck, FeedReport, SelfFeed } from "./stream-rpc";
import type { Subscription, SubscriptionTable } from "./subscriptions";
import { isReservedType } from "./system-events";

export interface DeliverySettings {
  retryBaseMs: number;
  retryMaxMs: number;
  maxBatchEvents: number;
  maxBatchBytes: number;
  /** While a subscription is behind, the alarm fires at least this often. */
  watchdogMs: number;
  /** Failed attempts in a row after which a subscription is parked. */
  maxAttempts: number;
  /** How long a self-feeding writer's lease lasts past its last claim (feed-leases.ts). */
  feedLeaseMs: number;
}

export const DEFAULT_DELIVERY: DeliverySettings = {
  retryBaseMs: 1_000,
  retryMaxMs: 300_000,
  maxBatchEvents: 100,
  maxBatchBytes: 256 * 1024,
  watchdogMs: 30_000,
  maxAttempts: 10,
  feedLeaseMs: 5_000,
};

/** What a subscriber receives. A webhook gets exactly this as its JSON body. */
export interface DeliveryBatch {
  stream: string;
  /** The stream's Durable Object name, for subscribers that append back to it. */
  streamName: string;
  subscriptionKey: string;
  anchorOffset: number;
  events: Omit<StreamEvent, "idempotencyKey">[];
  /** The first offset after this batch: the cursor once the batch is acknowledged. */
  nextOffset: number;
}

/** A subscriber's answer: `{ ackOffset }` = everything at or below it is durably processed. */
export function ackOffsetOf(result: unknown): number | null {
  if (result === null || typeof result !== "object") return null;
  const ack = (result as { ackOffset?: unknown }).ackOffset;
  return typeof ack === "number" && Number.isSafeInteger(ack) && ack >= 0 ? ack : null;
}

export function matches(eventTypes: string[], type: string | null): boolean {
  if (eventTypes[0] === "*") return !isReservedType(type);
  return type !== null && eventTypes.includes(type);
}

/** Exponential backoff with ±20% jitter, never above the cap; non-retryable failures wait about the cap. */
export function retryDelay(
  attempts: number,
  retryable: boolean,
  settings: DeliverySettings,
  random = Math.random,
): number {
  return backoffMs(
    retryable ? attempts : Number.POSITIVE_INFINITY,
    { baseMs: settings.retryBaseMs, maxMs: settings.retryMaxMs, jitter: [0.8, 1.2] },
    random,
  );
}

export interface DeliveryDeps {
  env: object;
  policy: () => CallablePolicy;
  settings: () => DeliverySettings;
  background: (work: Promise<unknown>) => void;
  armAlarm: () => Promise<void>;
}

export class Deliveries {
  readonly #inFlight = new Set<string>();
  readonly #leases: FeedLeases;
  /** A commit to this tail left nothing for kick() to start (set by `stored`, read once). */
  #quietAt: number | null = null;

  constructor(
    private readonly log: StreamLog,
    private readonly table: SubscriptionTable,
    private readonly core: StreamCore,
    private readonly deps: DeliveryDeps,
  ) {
    this.#leases = new FeedLeases(() => deps.settings().feedLeaseMs);
  }

  /** Starts a delivery for every subscription that is behind and due. */
  kick(now = Date.now()): void {
    if (this.table.count() === 0) return;
    const meta = this.log.meta();
    if (!meta || meta.soft_deleted) return;
    for (const sub of this.table.all()) {
      if (this.#due(sub, meta.tail, now) && !this.#inFlight.has(sub.key))
        this.deps.background(this.run(sub.key, sub));
    }
  }

  /** After a commit to `tail`: starts what it made due (nothing, if `stored` settled it all). */
  committed(tail: number): void {
    const quiet = this.#quietAt === tail;
    this.#quietAt = null;
    if (!quiet) queueMicrotask(() => this.kick());
  }

  /** A subscriber restarted (`resumeDeliveries`): no lease stands, deliver whatever is due. */
  resume(): void {
    this.#leases.clear();
    this.kick();
  }

  /**
   * A self-feeding subscriber's report without an append: its acknowledgements move cursors
   * (up to the tail), its released leases end, and whatever is then due is delivered.
   */
  acknowledge(report: FeedReport): void {
    const meta = this.log.meta();
    if (meta && !meta.soft_deleted) this.#acknowledged(report.acks, meta.tail);
    this.#leases.release(report.release);
    this.kick();
  }

  #acknowledged(acks: readonly FeedAck[], upTo: number): void {
    this.table.acknowledged(acks, upTo);
  }

  /**
   * Inside an append's transaction (CoreHooks.stored), in this order:
   * - the writer's acknowledgements (`selfFeed.acks`, of events before this append) move
   *   cursors as a delivery's answer would;
   * - a subscription caught up to the tail before the append (`from`), active, not retrying
   *   and not out on a call, that consumes none of the stored `types`, has nothing to receive
   *   from this commit: its cursor moves to `to` here, one UPDATE for all such subscriptions,
   *   instead of a delivery run each (a log scan, an UPDATE and row reads per subscription);
   * - leases (feed-leases.ts): the subscriptions the writer feeds itself keep or get one, all
   *   others lose theirs.
   * Any other subscription — lagging, failing, parked, in flight — is left to kick() exactly
   * as before. Rows that cannot be read are left to kick() too (which reports them), so this
   * never fails an append.
   */
  stored(from: number, to: number, types: (string | null)[], selfFeed?: SelfFeed): void {
    if (this.table.count() === 0) return;
    if (selfFeed) this.#acknowledged(selfFeed.acks, from);
    let subs: Subscription[];
    try {
      subs = this.table.all();
    } catch {
      this.#leases.clear();
      return;
    }
    const now = Date.now();
    this.#leases.commit(subs, from, new Set(selfFeed?.keys), this.#inFlight, now);
    const keys: string[] = [];
    let due = false;
    for (const sub of subs) {
      const passed =
        sub.cursor === from &&
        sub.health === "active" &&
        sub.nextRetryAt === null &&
        !this.#inFlight.has(sub.key) &&
        !types.some((type) => matches(sub.eventTypes, type));
      if (passed) keys.push(sub.key);
      // Behind after this commit, and nothing else (a run out, a lease, a retry time) on it.
      else if (!this.#inFlight.has(sub.key)) due ||= this.#due(sub, to, now);
    }
    // A `stream/` event in the commit may configure, resume or skip a subscription after this
    // hook (CoreHooks.systemEvent): such a commit always kicks.
    this.#quietAt = due || types.some(isReservedType) ? null : to;
    if (keys.length === 0) return;
    this.table.passedOver(keys, from, to);
    trace("delivery.passed", () => ({ stream: this.log.meta()?.path, subscriptions: keys, to }));
  }

  #due(sub: Subscription, tail: number, now: number): boolean {
    return (
      sub.health !== "parked" &&
      sub.cursor < tail &&
      (sub.nextRetryAt === null || sub.nextRetryAt <= now) &&
      this.#leases.heldUntil(sub.key, now) === null
    );
  }

  /** When the alarm must next fire for deliveries (retry time, or the watchdog), if ever. */
  nextWake(now: number): number | null {
    if (this.table.count() === 0) return null;
    const meta = this.log.meta();
    if (!meta || meta.soft_deleted) return null;
    let next: number | null = null;
    for (const sub of this.table.all()) {
      if (sub.cursor >= meta.tail || sub.health === "parked") continue;
      // A retry that is already out (its time has passed) is watched, not re-fired; a failure
      // writes a future retry time before arming, so the next retry is still scheduled.
      const watchdog = now + this.deps.settings().watchdogMs;
      const retrying =
        sub.nextRetryAt !== null && !(this.#inFlight.has(sub.key) && sub.nextRetryAt <= now);
      // A leased subscription is delivered to when its lease ends, unless acknowledged first.
      const leased = this.#leases.heldUntil(sub.key, now);
      const at = retrying ? sub.nextRetryAt! : (leased ?? watchdog);
      next = next === null ? at : Math.min(next, at);
    }
    return next;
  }

  /**
   * Delivers batches to one subscription until it is caught up or a delivery fails. `read` is
   * its row as just read in the same synchronous step (kick), which spares reading it again.
   */
  async run(key: string, read?: Subscription): Promise<void> {
    if (this.#inFlight.has(key)) return;
    this.#inFlight.add(key);
    try {
      for (let first = true; ; first = false) {
        const meta = this.log.meta();
        const sub = first && read ? read : this.table.get(key);
        if (!meta || meta.soft_deleted || !sub || !this.#due(sub, meta.tail, Date.now())) return;
        const batch = this.#batch(sub, meta);
        if (batch.events.length === 0) {
          // Nothing for it in the range: one UPDATE moves the cursor (atomic on its own).
          this.table.delivered(key, batch.nextOffset - 1);
          continue;
        }
        if (!(await this.#deliver(sub, batch))) return;
      }
    } finally {
      this.#inFlight.delete(key);
    }
  }

  #batch(sub: Subscription, meta: StreamMeta): DeliveryBatch {
    const settings = this.deps.settings();
    const scanned = this.log.read(sub.cursor, meta.tail, settings.maxBatchEvents * 10);
    const events: DeliveryBatch["events"] = [];
    // A failing subscription is retried one event at a time, so that a poison event is
    // isolated (and parked, resumed or skipped) exactly, never with its neighbours.
    const maxEvents = sub.health === "active" ? settings.maxBatchEvents : 1;
    let bytes = 0;
    let through = scanned.at(-1)?.offset ?? sub.cursor;
    for (const message of scanned) {
      if (!matches(sub.eventTypes, message.type)) continue;
      const size = typeof message.body === "string" ? message.body.length : message.body.byteLength;
      if (
        events.length > 0 &&
        (events.length >= maxEvents || bytes + size > settings.maxBatchBytes)
      ) {
        through = message.offset - 1;
        break;
      }
      const { idempotencyKey: _key, ...event } = decodeEvent(
        message.offset,
        message.body,
        message.createdAt,
      );
      events.push(event);
      bytes += size;
    }
    return {
      stream: meta.path,
      streamName: meta.name,
      subscriptionKey: sub.key,
      anchorOffset: sub.anchorOffset,
      events,
      nextOffset: through + 1,
    };
  }

  /** One call; returns whether the subscriber made progress. */
  async #deliver(sub: Subscription, batch: DeliveryBatch): Promise<boolean> {
    const through = batch.nextOffset - 1;
    let failure: CallableError;
    try {
      // Webhooks get the documented public body; in-platform callables also get the internal
      // stream name and the anchor (processor hosts need both).
      const payload =
        sub.callable.kind === "webhook"
          ? {
              stream: batch.stream,
              subscriptionKey: batch.subscriptionKey,
              events: batch.events,
              nextOffset: batch.nextOffset,
            }
          : batch;
      trace("delivery.sent", () => ({
        stream: batch.stream,
        subscription: sub.key,
        offsets: batch.events.map((e) => e.offset),
        types: batch.events.map((e) => e.type),
      }));
      const answer = await invokeCallable(sub.callable, payload, {
        env: this.deps.env,
        policy: this.deps.policy(),
        secret: sub.secret,
        // Stable across retries of the same events (the scanned range may grow meanwhile).
        messageId: `${sub.key}@${batch.events[0]!.offset}-${batch.events.at(-1)!.offset}`,
      });
      // In-platform subscribers (processor hosts) answer a result envelope (src/rpc/result.ts).
      // Its code says whether trying again can help: a refusal that would only repeat parks.
      if (isRpcResult(answer) && !answer.ok)
        throw new CallableError("remote", answer.error.message, RETRYABLE[answer.error.code]);
      const result = isRpcResult(answer) && answer.ok ? answer.value : answer;
      // Only a well-formed `{ ackOffset }` acknowledges: any other answer (undefined from a
      // built-in, a stray value) ran no subscriber code that we know of, so it is a failure.
      const acked = ackOffsetOf(result);
      if (acked === null) {
        throw new CallableError(
          "remote",
          `subscriber answer is not an acknowledgement (expected { ackOffset: n }): ${String(JSON.stringify(result) ?? result).slice(0, 200)}`,
          false,
        );
      }
      const ack = Math.min(acked, through);
      trace("delivery.acked", () => ({ stream: batch.stream, subscription: sub.key, ack }));
      if (ack > sub.cursor) {
        this.#settle(
          sub,
          () => this.table.delivered(sub.key, ack),
          sub.health === "failing" ? recovered(sub) : null,
        );
        return true;
      }
      failure = new CallableError(
        "remote",
        `subscriber acknowledged offset ${ack}, which makes no progress past ${sub.cursor}`,
        true,
      );
    } catch (error) {
      failure =
        error instanceof CallableError
          ? error
          : new CallableError("transport", String(error), true);
    }
    const attempts = sub.attempts + 1;
    if (attempts >= this.deps.settings().maxAttempts || !failure.retryable) {
      const stuck = { offset: batch.events[0]!.offset, through: batch.events.at(-1)!.offset };
      this.#settle(
        sub,
        () => this.table.parked(sub.key, failure.message, failure.retryable, stuck),
        parked(sub, attempts, failure, stuck),
      );
      console.error(
        JSON.stringify({
          msg: "subscription parked",
          stream: batch.stream,
          subscription: sub.key,
          attempts,
          retryable: failure.retryable,
          error: failure.message,
          stuckOffset: stuck.offset,
          stuckThrough: stuck.through,
        }),
      );
      return false;
    }
    const nextRetryAt = Date.now() + retryDelay(attempts, failure.retryable, this.deps.settings());
    this.#settle(
      sub,
      () => this.table.failed(sub.key, failure.message, failure.retryable, nextRetryAt),
      sub.health === "active" ? failed(sub, attempts, failure, nextRetryAt) : null,
    );
    console.warn(
      JSON.stringify({
        msg: "delivery failed",
        stream: batch.stream,
        subscription: sub.key,
        attempts,
        retryable: failure.retryable,
        error: failure.message,
        nextRetryAt: new Date(nextRetryAt).toISOString(),
      }),
    );
    await this.deps.armAlarm();
    return false;
  }

  /**
   * Writes the outcome of a delivery, with its health event, in one transaction — unless the
   * subscription was removed or reconfigured while the call was out (then it is discarded).
   */
  #settle(
    sub: Subscription,
    write: () => void,
    event: Parameters<typeof encodeEvent>[0] | null,
  ): void {
    const current = this.table.get(sub.key);
    if (!current || current.anchorOffset !== sub.anchorOffset) return;
    // Each table write is one UPDATE, atomic by itself: only a health event needs the
    // transaction that commits the two together (most settles are plain acknowledgements).
    if (!event) {
      write();
      return;
    }
    const meta = this.log.meta();
    this.log.transaction(() => {
      write();
      if (meta && meta.closed_at === null) {
        this.core.append({
          body: { kind: "messages", messages: [encodeEvent(event)] },
          system: true,
        });
      }
    });
  }
}
