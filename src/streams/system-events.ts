/**
 * Events in the reserved `stream/` domain are written by the Stream Durable Object itself:
 * subscription configuration (reduced into the subscription table in the same transaction)
 * and subscriber health transitions. Clients cannot append them through either door; they
 * configure subscriptions through the subscription API, which checks policy first.
 *
 * A subscription that keeps failing is parked (`stream/subscriber-parked`, naming the offset
 * it is stuck on); an operator then resumes it (`-resumed`, retry from the cursor) or skips
 * the stuck event (`-skipped`, naming exactly the offsets skipped and who skipped them).
 * These are not delivered to `*` subscribers, but a subscriber may name them explicitly
 * (the session index does, to show a stuck session as failed).
 */
import { z } from "zod";
import { callableSchema } from "../callables/descriptor";

export const RESERVED_PREFIX = "stream/";

export const subscriptionKeySchema = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9._~:@/+=-]+$/, "subscription keys use A-Z a-z 0-9 . _ ~ : @ / + = -");

/**
 * Who resumed or skipped a subscription: `admin`, or `tenant:<id>/key:<api key prefix>`
 * (`key:dev` for the local development key, `key:none` when the request carried no key).
 */
export const principalSchema = z
  .string()
  .min(1)
  .max(300)
  .regex(
    /^(admin|tenant:[^/\s]+\/key:[A-Za-z0-9_-]+)$/,
    "principal is `admin` or `tenant:<id>/key:<prefix>`",
  );
export type Principal = z.infer<typeof principalSchema>;

export const startAtSchema = z.union([
  z.literal("beginning"),
  z.literal("now"),
  z.number().int().nonnegative(),
]);
export type StartAt = z.infer<typeof startAtSchema>;

export const eventTypesSchema = z
  .array(z.string().min(1).max(200))
  .min(1)
  .max(100)
  .refine(
    (types) => !types.includes("*") || types.length === 1,
    "`*` must be the only entry when present",
  );

export const systemEventSchemas = {
  "stream/subscription-configured": z.strictObject({
    key: subscriptionKeySchema,
    callable: callableSchema,
    eventTypes: eventTypesSchema,
    startAt: startAtSchema,
  }),
  "stream/subscription-removed": z.strictObject({ key: subscriptionKeySchema }),
  "stream/subscriber-failed": z.strictObject({
    key: subscriptionKeySchema,
    attempts: z.number().int().positive(),
    error: z.string(),
    retryable: z.boolean(),
    nextRetryAt: z.string(),
  }),
  "stream/subscriber-recovered": z.strictObject({
    key: subscriptionKeySchema,
    attempts: z.number().int().nonnegative(),
  }),
  "stream/subscriber-parked": z.strictObject({
    key: subscriptionKeySchema,
    attempts: z.number().int().positive(),
    error: z.string(),
    retryable: z.boolean(),
    /** The first (and, after a failure, only) event of the batch that keeps failing. */
    stuckOffset: z.number().int().positive(),
    /** The last event of that batch (equal to stuckOffset unless a multi-event batch parked). */
    stuckThrough: z.number().int().positive(),
    /** Every event at or below it was delivered (or skipped). */
    cursor: z.number().int().nonnegative(),
  }),
  "stream/subscriber-resumed": z.strictObject({
    key: subscriptionKeySchema,
    cursor: z.number().int().nonnegative(),
    by: principalSchema,
  }),
  "stream/subscriber-skipped": z.strictObject({
    key: subscriptionKeySchema,
    /** Exactly the events that were skipped (never delivered to this subscription). */
    offsets: z.array(z.number().int().positive()).min(1),
    /** The cursor before and after: only non-matching events and `offsets` lie between. */
    from: z.number().int().nonnegative(),
    cursor: z.number().int().positive(),
    by: principalSchema,
    reason: z.string().max(2_000).nullable(),
  }),
} as const;
export type SystemEventType = keyof typeof systemEventSchemas;
export type SubscriptionConfigured = z.infer<
  (typeof systemEventSchemas)["stream/subscription-configured"]
>;

export const isReservedType = (type: string | null) => type?.startsWith(RESERVED_PREFIX) === true;

export type SystemEventPayload<T extends SystemEventType> = z.infer<(typeof systemEventSchemas)[T]>;
