/**
 * Administration of a stream's subscriptions: configure, remove, and resume or skip a parked
 * one. Every change is a `stream/` system event appended to the stream itself (reduced into
 * the subscription table by the hosting Durable Object), so the log says who changed what.
 * The Stream DO's RPC methods of the same names call these (stream-do.ts).
 */
import { CallableError } from "../callables/errors";
import { resolveTarget } from "../callables/invoke";
import { checkCallable } from "../callables/policy";
import { newWebhookSecret } from "../callables/webhook";
import { type Env, readCallablePolicy } from "../env";
import { conflict, invalidInput, notFound } from "../errors/domain";
import type { StreamCore } from "./core";
import { matches } from "./delivery";
import { encodeEvent } from "./messages";
import {
  parse,
  type SkipOptions,
  type SubscriptionInput,
  type SubscriptionStatus,
  skipOptionsSchema,
  subscriptionInputSchema,
  toStatus,
} from "./stream-rpc";
import { type Subscription, SubscriptionTable } from "./subscriptions";
import { type Principal, principalSchema, subscriptionKeySchema } from "./system-events";

export class SubscriptionAdmin {
  readonly #core: StreamCore;
  readonly #subscriptions: SubscriptionTable;
  readonly #env: Env;

  constructor(core: StreamCore, subscriptions: SubscriptionTable, env: Env) {
    this.#core = core;
    this.#subscriptions = subscriptions;
    this.#env = env;
  }

  /**
   * Configures a subscription by appending `stream/subscription-configured`. An identical
   * repeat answers `created: false`; a different configuration under the same key is a 409.
   * Webhook subscriptions get a signing secret, returned here once and never again.
   */
  configure(input: SubscriptionInput): {
    created: boolean;
    subscription: SubscriptionStatus;
    secret?: string;
  } {
    const wanted = parse(subscriptionInputSchema, input, "subscription");
    try {
      checkCallable(wanted.callable, readCallablePolicy(this.#env));
      if (wanted.callable.kind !== "webhook") resolveTarget(wanted.callable, this.#env);
    } catch (error) {
      if (error instanceof CallableError)
        throw invalidInput(error.message, { kind: error.kind }, "validation_failed");
      throw error;
    }
    const meta = this.#core.live(Date.now());
    if (typeof wanted.startAt === "number" && wanted.startAt > meta.tail) {
      throw invalidInput(
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
  }

  remove(key: string): void {
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
  resume(key: string, by: Principal): SubscriptionStatus {
    const k = parse(subscriptionKeySchema, key, "subscription key");
    const principal = parse(principalSchema, by, "principal");
    this.#core.live(Date.now());
    const sub = this.#parked(k);
    this.#appendSystem({
      type: "stream/subscriber-resumed",
      payload: { key: k, cursor: sub.cursor, by: principal },
    });
    return toStatus(this.#subscriptions.get(k)!, this.#core.log.meta()!.tail);
  }

  /**
   * Skips what a parked subscription is stuck on: its cursor moves past the stuck event (a
   * single event, since failing subscriptions are retried one event at a time; a batch only
   * when the very first attempt parked it) and `stream/subscriber-skipped` names exactly the
   * skipped offsets and the principal. Later events are delivered as usual. With `offset`,
   * the skip happens only if that is the stuck offset (409 otherwise).
   */
  skip(
    key: string,
    by: Principal,
    options: SkipOptions = {},
  ): { skipped: number[]; subscription: SubscriptionStatus } {
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
  }
}
