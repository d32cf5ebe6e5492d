/**
 * The subscription management API. Descriptors are validated here (zod) and again, with the
 * callable policy, by the stream's Durable Object, which appends the configuring event.
 *   PUT    /v1/subscriptions                      { stream, key, callable, eventTypes, startAt? }
 *   GET    /v1/subscriptions?stream=<path>
 *   DELETE /v1/subscriptions?stream=<path>&key=<key>
 * `stream` is the path as it appears after /v1/stream (`/orders/eu`).
 */
import { type Context, Hono } from "hono";
import { z } from "zod";
import { callableSchema } from "../callables/descriptor";
import { streamName } from "../streams/naming";
import { validateStreamPath } from "../streams/path";
import { eventTypesSchema, startAtSchema, subscriptionKeySchema } from "../streams/system-events";
import type { AppEnv } from "./app";
import { ApiError, badRequest } from "./errors";
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

/** The routes act for the tenant the /v1 auth middleware put on the context. */
export function subscriptionRoutes() {
  const routes = new Hono<AppEnv>();
  const stub = (c: Context<AppEnv>, path: string) =>
    c.env.STREAMS.get(c.env.STREAMS.idFromName(streamName(c.get("tenant"), path)));
  const rpc = async <T>(call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (error) {
      throw ApiError.from(error);
    }
  };

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
    const result = await rpc(() => stub(c, stream).configureSubscription(input));
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
    const subscriptions = await rpc(() => stub(c, stream).listSubscriptions());
    return c.json({ stream, subscriptions });
  });

  routes.delete("/", async (c) => {
    const { stream, key } = query(c, z.object({ stream: streamPath, key: subscriptionKeySchema }));
    await rpc(() => stub(c, stream).removeSubscription(key));
    return c.body(null, 204);
  });

  return routes;
}
