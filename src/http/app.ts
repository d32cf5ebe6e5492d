/**
 * The worker's router: edge validation and routing only. Stream requests are checked
 * (path, fork source) and forwarded to the stream's Durable Object, which speaks the Durable
 * Streams protocol itself because its live readers wait on in-memory commit signals there.
 */
import { Hono } from "hono";
import { authenticateRequest, type Principal } from "../auth/principal";
import type { Env } from "../env";
import { DomainError, internal, notFound, unsupportedOperation } from "../errors/domain";
import { rpcResponse } from "../rpc/serve";
import { SESSION_STREAMS } from "../sessions/naming";
import { validateStreamPath } from "../streams/path";
import { drainBody } from "../streams/protocol/handler";
import { adminRoutes } from "./admin";
import { allowIndex } from "./allow";
import { docsPage } from "./docs";
import { errorAnswer } from "./errors";
import { openApiDocument } from "./openapi";
import { corsPolicy, preflight, withStandardHeaders } from "./security";
import { routeAccess } from "./session-access";
import { sessionRoutes } from "./sessions";
import { forwardToStream, STREAM_ROUTE } from "./stream-proxy";
import { subscriptionRoutes } from "./subscriptions";

export type AppEnv = {
  Bindings: Env;
  /**
   * `tenant`: the authenticated tenant of a /v1 request, and `principal`: what authenticated
   * it (an API key, or a session token with its session and scopes). Set by the auth middleware.
   */
  Variables: { tenant: string; principal: Principal };
};

/**
 * A request refused before its body was read still has the client's body in flight: read and
 * drop it (bounded), so that the client gets to read the answer and workerd does not fail
 * reading it after the response ("Can't read from request stream after response has been sent").
 */
const discardBody = drainBody;

export function createApp() {
  const app = new Hono<AppEnv>();

  app.use("*", async (c, next) => {
    await next();
    if (c.res.status === 101) return; // a WebSocket upgrade (capnweb) passes as is
    const res = withStandardHeaders(
      c.res,
      c.req.header("origin") ?? null,
      corsPolicy(c.env.CORS_ORIGINS),
    );
    // Only a copy is assigned (hono's setter copies the response once more and merges the
    // old headers back into it).
    if (res !== c.res) c.res = res;
  });

  app.options("*", (c) =>
    preflight(c.req.header("origin") ?? null, corsPolicy(c.env.CORS_ORIGINS)),
  );

  app.get("/healthz", (c) => c.json({ ok: true }));

  let openApi: ReturnType<typeof openApiDocument> | undefined; // built on first request, not at start-up
  app.get("/openapi.json", (c) => {
    openApi ??= openApiDocument(app.routes);
    return c.json(openApi);
  });

  app.get("/docs", docsPage());

  app.route("/admin", adminRoutes());

  // capnweb (HTTP batch and WebSocket): authenticated in-band, so before the bearer check.
  app.all("/v1/rpc", (c) =>
    rpcResponse(
      c.req.raw,
      c.env,
      async (request) => app.fetch(request, c.env, c.executionCtx),
      corsPolicy(c.env.CORS_ORIGINS),
    ),
  );

  // Every /v1 route acts for the tenant its API key or session token belongs to (preflights
  // stay open); session tokens reach only their session's routes (src/auth/principal.ts).
  // What a path admits is read from the route table, built on first use like `allowed` below.
  let admits: ReturnType<typeof routeAccess> | undefined;
  app.use("/v1/*", async (c, next) => {
    if (c.req.method === "OPTIONS") return next();
    admits ??= routeAccess(app.routes);
    const url = new URL(c.req.url);
    const principal = await authenticateRequest(c.req.raw, c.env, admits(url.pathname), url);
    c.set("principal", principal);
    c.set("tenant", principal.tenant);
    await next();
  });

  app.route("/v1/subscriptions", subscriptionRoutes());

  app.route("/v1/sessions", sessionRoutes());

  app.all(`${STREAM_ROUTE}/*`, (c) => {
    const path = validateStreamPath(new URL(c.req.url).pathname.slice(STREAM_ROUTE.length));
    // Session streams are written by their SessionAgent only (through the session API);
    // over the stream API they can be read (and forked), never written or deleted.
    if (path.startsWith(`${SESSION_STREAMS}/`) && !["GET", "HEAD"].includes(c.req.method)) {
      throw unsupportedOperation("session streams are read-only here; use /v1/sessions", {
        allow: ["GET", "HEAD"],
      });
    }
    return forwardToStream(c, path);
  });

  // A known path with an unsupported method is a 405 naming the methods it has (from the
  // route table, built on first use when every route is registered).
  let allowed: ((pathname: string) => string[]) | undefined;
  app.notFound(async (c) => {
    await discardBody(c.req.raw);
    const pathname = new URL(c.req.url).pathname;
    allowed ??= allowIndex(app.routes);
    const methods = allowed(pathname);
    if (methods.length > 0 && !methods.includes(c.req.method)) {
      return errorAnswer(
        unsupportedOperation(
          `${c.req.method} is not supported on ${pathname}; use ${methods.join(", ")}`,
          { allow: methods },
        ),
      );
    }
    return errorAnswer(notFound(`no route for ${c.req.method} ${pathname}`));
  });

  app.onError(async (error, c) => {
    await discardBody(c.req.raw);
    if (error instanceof DomainError) return errorAnswer(error);
    console.error(
      JSON.stringify({
        msg: "unhandled error",
        error: String(error),
        stack: (error as Error).stack,
      }),
    );
    return errorAnswer(internal());
  });

  return app;
}
