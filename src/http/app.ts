/**
 * The worker's router: edge validation and routing only. Stream requests are checked
 * (path, fork source) and forwarded to the stream's Durable Object, which speaks the Durable
 * Streams protocol itself because its live readers wait on in-memory commit signals there.
 */
import { Hono } from "hono";
import type { Env } from "../env";
import { STREAM_ROUTE, streamName } from "../streams/naming";
import { validateStreamPath } from "../streams/path";
import { INTERNAL } from "../streams/protocol/handler";
import { ApiError, badRequest, errorResponse } from "./errors";
import { preflight, withStandardHeaders } from "./security";
import { subscriptionRoutes } from "./subscriptions";

export type AppEnv = { Bindings: Env };

/** Until tenants arrive every stream belongs to this one. */
const DEFAULT_TENANT = "default";

export function createApp() {
  const app = new Hono<AppEnv>();

  app.use("*", async (c, next) => {
    await next();
    c.res = withStandardHeaders(c.res);
  });

  app.options("*", () => preflight());

  app.get("/healthz", (c) => c.json({ ok: true }));

  app.route(
    "/v1/subscriptions",
    subscriptionRoutes(() => DEFAULT_TENANT),
  );

  app.all(`${STREAM_ROUTE}/*`, async (c) => {
    const url = new URL(c.req.url);
    const path = validateStreamPath(url.pathname.slice(STREAM_ROUTE.length));
    const headers = new Headers(c.req.raw.headers);
    for (const name of Object.values(INTERNAL)) headers.delete(name);
    headers.set(INTERNAL.name, streamName(DEFAULT_TENANT, path));
    headers.set(INTERNAL.path, path);
    const forkedFrom = c.req.header("stream-forked-from");
    if (forkedFrom !== undefined) {
      if (c.req.method !== "PUT")
        throw badRequest("Stream-Forked-From is only valid on PUT", undefined, "invalid_header");
      const source = forkedFrom.startsWith(`${STREAM_ROUTE}/`)
        ? forkedFrom.slice(STREAM_ROUTE.length)
        : forkedFrom;
      headers.set(INTERNAL.forkSource, streamName(DEFAULT_TENANT, validateStreamPath(source)));
    }
    const stub = c.env.STREAMS.get(c.env.STREAMS.idFromName(streamName(DEFAULT_TENANT, path)));
    const hasBody = c.req.method !== "GET" && c.req.method !== "HEAD";
    return stub.fetch(
      new Request(c.req.url, {
        method: c.req.method,
        headers,
        body: hasBody ? c.req.raw.body : null,
      }),
    );
  });

  app.notFound((c) =>
    errorResponse(
      new ApiError(404, "not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`),
    ),
  );

  app.onError((error) => {
    const known = ApiError.from(error);
    if (known instanceof ApiError) return errorResponse(known);
    console.error(
      JSON.stringify({
        msg: "unhandled error",
        error: String(error),
        stack: (error as Error).stack,
      }),
    );
    return errorResponse(new ApiError(500, "internal", "internal error"));
  });

  return app;
}
