/**
 * The subscription management API. Descriptors are validated here (zod, as route middleware)
 * and again, with the callable policy, by the stream's Durable Object, which appends the
 * configuring event. The routes below describe themselves for /openapi.json: create (PUT),
 * list (GET), remove (DELETE), and resume / skip a parked subscription.
 * `stream` is the path as it appears after /v1/stream (`/orders/eu`). Keys may contain `/`,
 * so a subscription is addressed by query parameters, never by a path segment. Resume and
 * skip record who did it: `tenant:<id>/key:<api key prefix>` (`admin` on the admin routes).
 */
import { type Context, Hono } from "hono";
import { z } from "zod";
import { bearerToken } from "../auth/authenticate";
import { callableSchema } from "../callables/descriptor";
import { parseApiKey } from "../db/tenants";
import { invalidInput } from "../errors/domain";
import { unwrap } from "../rpc/result";
import { streamName } from "../streams/naming";
import { validateStreamPath } from "../streams/path";
import { streamStub } from "../streams/stub";
import {
  eventTypesSchema,
  type Principal,
  startAtSchema,
  subscriptionKeySchema,
} from "../streams/system-events";
import * as api from "./api-schemas";
import type { AppEnv } from "./app";
import { describe, json } from "./route-docs";
import { jsonInput, queryInput } from "./validators";

const streamPath = z
  .string()
  .min(1)
  .max(600)
  .transform((p, ctx) => {
    try {
      return validateStreamPath(p);
    } catch (error) {
      ctx.addIssue({ code: "custom", message: (error as Error).message });
      return z.NEVER;
    }
  });

export const putSchema = z.strictObject({
  stream: streamPath,
  key: subscriptionKeySchema,
  callable: callableSchema,
  eventTypes: eventTypesSchema,
  startAt: startAtSchema.optional(),
});

export const addressSchema = z.object({ stream: streamPath, key: subscriptionKeySchema });
const streamQuery = z.object({ stream: streamPath });

export const skipSchema = z.strictObject({
  /** The stuck offset as the operator saw it in the status; another one is a 409. */
  offset: z.number().int().positive().optional(),
  reason: z.string().max(2_000).nullish(),
});

/** `tenant:<id>/key:<prefix>` for the API key of this request (after authentication). */
export function principalOf(c: Context<AppEnv>): Principal {
  const header = c.req.header("authorization");
  const token = header === undefined ? null : bearerToken(header);
  const key =
    token === null
      ? "none"
      : c.env.DEV_API_KEY && token === c.env.DEV_API_KEY
        ? "dev"
        : (parseApiKey(token)?.prefix ?? "unknown");
  return `tenant:${c.get("tenant")}/key:${key}`;
}

/** The subscription side of `tenant`'s stream `path`. */
const streamOf = (c: Context<AppEnv>, tenant: string, path: string) =>
  streamStub(c.env, streamName(tenant, path));

type Address = z.output<typeof addressSchema>;

/** Resumes a parked subscription of `tenant`'s stream, as `principal`. */
export async function resumeParked(
  c: Context<AppEnv>,
  tenant: string,
  principal: Principal,
  { stream, key }: Address,
) {
  const subscription = await unwrap(streamOf(c, tenant, stream).resumeSubscription(key, principal));
  return { stream, subscription } satisfies z.input<typeof api.subscriptionResumedSchema>;
}

/** Skips the event a parked subscription of `tenant`'s stream is stuck on, as `principal`. */
export async function skipParked(
  c: Context<AppEnv>,
  tenant: string,
  principal: Principal,
  { stream, key }: Address,
  body: z.output<typeof skipSchema>,
) {
  const result = await unwrap(
    streamOf(c, tenant, stream).skipSubscription(key, principal, {
      offset: body.offset,
      reason: body.reason ?? null,
    }),
  );
  return {
    stream,
    skipped: result.skipped,
    subscription: result.subscription,
  } satisfies z.input<typeof api.subscriptionSkippedSchema>;
}

/** The routes act for the tenant the /v1 auth middleware put on the context. */
export function subscriptionRoutes() {
  return new Hono<AppEnv>()
    .put(
      "/",
      describe({
        summary:
          "Create a subscription (201, with a webhook secret shown once; 200 when identical; 409 when different)",
        responses: {
          201: json("Created", api.subscriptionPutSchema),
          200: json("Already exists", api.subscriptionPutSchema),
        },
      }),
      jsonInput(putSchema),
      async (c) => {
        const { stream, ...input } = c.req.valid("json");
        // A tenant may only point subscriptions at its own Durable Object instances.
        if (
          input.callable.kind === "durable-object" &&
          !input.callable.name.startsWith(`${c.get("tenant")}:`)
        ) {
          throw invalidInput(
            `durable-object callables must name an object of this tenant (a name starting with "${c.get("tenant")}:")`,
            undefined,
            "validation_failed",
          );
        }
        const result = await unwrap(
          streamOf(c, c.get("tenant"), stream).configureSubscription(input),
        );
        const answer = {
          stream,
          subscription: result.subscription,
          ...(result.secret ? { secret: result.secret } : {}),
        } satisfies z.input<typeof api.subscriptionPutSchema>;
        return result.created ? c.json(answer, 201) : c.json(answer, 200);
      },
    )
    .get(
      "/",
      describe({
        summary: "A stream's subscriptions with their status",
        responses: { 200: json("Subscriptions", api.subscriptionListSchema) },
      }),
      queryInput(streamQuery),
      async (c) => {
        const { stream } = c.req.valid("query");
        const subscriptions = await unwrap(
          streamOf(c, c.get("tenant"), stream).listSubscriptions(),
        );
        return c.json(
          { stream, subscriptions } satisfies z.input<typeof api.subscriptionListSchema>,
          200,
        );
      },
    )
    .delete(
      "/",
      describe({
        summary: "Remove a subscription",
        responses: { 204: { description: "Removed" } },
      }),
      queryInput(addressSchema),
      async (c) => {
        const { stream, key } = c.req.valid("query");
        await unwrap(streamOf(c, c.get("tenant"), stream).removeSubscription(key));
        return c.body(null, 204);
      },
    )
    .post(
      "/resume",
      describe({
        summary: "Resume a parked subscription: retry from its cursor (409 when it is not parked)",
        responses: { 200: json("The resumed subscription", api.subscriptionResumedSchema) },
      }),
      queryInput(addressSchema),
      async (c) =>
        c.json(await resumeParked(c, c.get("tenant"), principalOf(c), c.req.valid("query")), 200),
    )
    .post(
      "/skip",
      describe({
        summary:
          "Skip the event a parked subscription is stuck on (recorded with who skipped it; 409 when it is not parked or `offset` is not the stuck one)",
        responses: { 200: json("What was skipped", api.subscriptionSkippedSchema) },
      }),
      queryInput(addressSchema),
      jsonInput(skipSchema, { optional: true }),
      async (c) => {
        const answer = await skipParked(
          c,
          c.get("tenant"),
          principalOf(c),
          c.req.valid("query"),
          c.req.valid("json"),
        );
        return c.json(answer, 200);
      },
    );
}

/** The subscription routes' types (requests and responses), for `hc` clients. */
export type SubscriptionRoutes = ReturnType<typeof subscriptionRoutes>;
