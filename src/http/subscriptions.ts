/**
 * The subscription management API. Descriptors are validated here (zod) and again, with the
 * callable policy, by the stream's Durable Object, which appends the configuring event.
 *   PUT    /v1/subscriptions                      { stream, key, callable, eventTypes, startAt? }
 *   GET    /v1/subscriptions?stream=<path>
 *   DELETE /v1/subscriptions?stream=<path>&key=<key>
 *   POST   /v1/subscriptions/resume?stream=<path>&key=<key>      a parked one: retry from the cursor
 *   POST   /v1/subscriptions/skip?stream=<path>&key=<key>        { offset?, reason? }: skip the stuck event
 * `stream` is the path as it appears after /v1/stream (`/orders/eu`). Keys may contain `/`,
 * so a subscription is addressed by query parameters, never by a path segment. Resume and
 * skip record who did it: `tenant:<id>/key:<api key prefix>` (`admin` on the admin routes).
 */
import { type Context, Hono } from "hono";
import { z } from "zod";
import { bearerToken } from "../auth/authenticate";
import { callableSchema } from "../callables/descriptor";
import { parseApiKey } from "../db/tenants";
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
import type { AppEnv } from "./app";
import { badRequest } from "./errors";
import { jsonBody, query } from "./validation";

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

/** Resume or skip a parked subscription of `tenant`'s stream, as `principal`. */
export async function parkingAction(
  c: Context<AppEnv>,
  tenant: string,
  principal: Principal,
  action: "resume" | "skip",
): Promise<Response> {
  const { stream, key } = query(c, addressSchema);
  const stub = streamStub(c.env, streamName(tenant, stream));
  if (action === "resume") {
    const subscription = await unwrap(stub.resumeSubscription(key, principal));
    return c.json({ stream, subscription });
  }
  const body = await jsonBody(c, skipSchema, { optional: true });
  const result = await unwrap(
    stub.skipSubscription(key, principal, { offset: body.offset, reason: body.reason ?? null }),
  );
  return c.json({ stream, skipped: result.skipped, subscription: result.subscription });
}

/** The routes act for the tenant the /v1 auth middleware put on the context. */
export function subscriptionRoutes() {
  const routes = new Hono<AppEnv>();
  const stub = (c: Context<AppEnv>, path: string) =>
    streamStub(c.env, streamName(c.get("tenant"), path));

  routes.put("/", async (c) => {
    const body = await jsonBody(c, putSchema);
    const { stream, ...input } = body;
    // A tenant may only point subscriptions at its own Durable Object instances.
    if (
      input.callable.kind === "durable-object" &&
      !input.callable.name.startsWith(`${c.get("tenant")}:`)
    ) {
      throw badRequest(
        `durable-object callables must name an object of this tenant (a name starting with "${c.get("tenant")}:")`,
        undefined,
        "validation_failed",
      );
    }
    const result = await unwrap(stub(c, stream).configureSubscription(input));
    return c.json(
      {
        stream,
        subscription: result.subscription,
        ...(result.secret ? { secret: result.secret } : {}),
      },
      result.created ? 201 : 200,
    );
  });

  routes.get("/", async (c) => {
    const { stream } = query(c, z.object({ stream: streamPath }));
    const subscriptions = await unwrap(stub(c, stream).listSubscriptions());
    return c.json({ stream, subscriptions });
  });

  routes.delete("/", async (c) => {
    const { stream, key } = query(c, z.object({ stream: streamPath, key: subscriptionKeySchema }));
    await unwrap(stub(c, stream).removeSubscription(key));
    return c.body(null, 204);
  });

  routes.post("/resume", (c) => parkingAction(c, c.get("tenant"), principalOf(c), "resume"));
  routes.post("/skip", (c) => parkingAction(c, c.get("tenant"), principalOf(c), "skip"));

  return routes;
}
