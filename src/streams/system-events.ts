/**
 * Events in the reserved `stream/` domain are written by the Stream Durable Object itself:
 * subscription configuration (reduced into the subscription table in the same transaction)
 * and subscriber health transitions. Clients cannot append them through either door; they
 * configure subscriptions through the subscription API, which checks policy first.
 */
import { z } from "zod";
import { callableSchema } from "../callables/descriptor";

export const RESERVED_PREFIX = "stream/";

export const subscriptionKeySchema = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9._~:@/+=-]+$/, "subscription keys use A-Z a-z 0-9 . _ ~ : @ / + = -");

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
} as const;
export type SystemEventType = keyof typeof systemEventSchemas;
export type SubscriptionConfigured = z.infer<
  (typeof systemEventSchemas)["stream/subscription-configured"]
>;

export const isReservedType = (type: string | null) => type?.startsWith(RESERVED_PREFIX) === true;
