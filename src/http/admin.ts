/**
 * Operator routes, mounted at /admin and guarded by the ADMIN_TOKEN secret
 * (`Authorization: Bearer <ADMIN_TOKEN>`). When ADMIN_TOKEN is not set they do not exist (404).
 * A missing or malformed Authorization header is 401; a wrong token is 403.
 *   POST   /admin/tenants                       { id?, name }  → 201 { tenant }   (409 if id exists)
 *   POST   /admin/tenants/:id/keys              { name }       → 201 { key, prefix, … } (key shown once)
 *   DELETE /admin/tenants/:id/keys/:prefix                     → 204 (404 unknown tenant or key)
 *   POST   /admin/tenants/:id/sessions/:session/reindex       → 202 (rebuilds the session's D1 row)
 *   POST   /admin/tenants/:id/subscriptions/resume?stream=&key=  a tenant's parked subscription
 *   POST   /admin/tenants/:id/subscriptions/skip?stream=&key=    { offset?, reason? } (recorded as `admin`)
 *   GET    /admin/tenants/:id/sessions/:session/storage       → 200 bytes stored by the session's
 *          stream and SessionAgent, next to the bytes of its transcript
 */
import { Hono } from "hono";
import { z } from "zod";
import { bearerToken, forgetKey } from "../auth/authenticate";
import { secretsEqual } from "../auth/secrets";
import { dbOf } from "../db/client";
import { createApiKey, createTenant, revokeApiKey, tenantIdSchema } from "../db/tenants";
import { unwrap } from "../rpc/result";
import { type SessionAgentRpc, sessionObjectName, sessionPath } from "../sessions/session-agent";
import { streamName } from "../streams/naming";
import { streamStub } from "../streams/stub";
import type { AppEnv } from "./app";
import { ApiError, notFound } from "./errors";
import { parkingAction } from "./subscriptions";
import { jsonBody, parseWith } from "./validation";

const nameSchema = z.string().trim().min(1).max(200);
const createTenantSchema = z.strictObject({ id: tenantIdSchema.optional(), name: nameSchema });
const createKeySchema = z.strictObject({ name: nameSchema });
const tenantParams = z.object({ id: tenantIdSchema });
const keyParams = z.object({ id: tenantIdSchema, prefix: z.string().regex(/^[0-9a-f]{8}$/) });
const reindexParams = z.object({
  id: tenantIdSchema,
  session: z.string().regex(/^[0-9A-HJKMNP-TV-Z]{26}$/),
});

export function adminRoutes() {
  const routes = new Hono<AppEnv>();

  routes.use("*", async (c, next) => {
    const token = c.env.ADMIN_TOKEN;
    if (!token) throw notFound(`no route for ${c.req.method} ${new URL(c.req.url).pathname}`);
    const header = c.req.header("authorization");
    const presented = header === undefined ? null : bearerToken(header);
    if (presented === null) {
      throw new ApiError(
        401,
        "unauthorized",
        "admin routes need Authorization: Bearer <ADMIN_TOKEN>",
        undefined,
        {
          "www-authenticate": 'Bearer realm="durable-agent-sessions-admin"',
        },
      );
    }
    if (!(await secretsEqual(presented, token))) {
      throw new ApiError(403, "forbidden", "invalid admin token");
    }
    await next();
    c.header("cache-control", "no-store");
  });

  routes.post("/tenants", async (c) => {
    const body = await jsonBody(c, createTenantSchema);
    const tenant = await createTenant(dbOf(c.env), body);
    return c.json({ tenant }, 201);
  });

  routes.post("/tenants/:id/keys", async (c) => {
    const { id } = parseWith(tenantParams, c.req.param(), "path");
    const { name } = await jsonBody(c, createKeySchema);
    const created = await createApiKey(dbOf(c.env), id, name);
    return c.json(created, 201);
  });

  routes.delete("/tenants/:id/keys/:prefix", async (c) => {
    const { id, prefix } = parseWith(keyParams, c.req.param(), "path");
    forgetKey(prefix);
    if (!(await revokeApiKey(dbOf(c.env), id, prefix))) {
      throw notFound(`tenant ${id} has no key ${prefix}`);
    }
    return c.body(null, 204);
  });

  routes.post("/tenants/:id/sessions/:session/reindex", async (c) => {
    const { id, session } = parseWith(reindexParams, c.req.param(), "path");
    const stub = c.env.SESSIONS.get(
      c.env.SESSIONS.idFromName(sessionObjectName(id, session)),
    ) as unknown as SessionAgentRpc;
    await unwrap(stub.reindex());
    return c.json({ reindexing: { tenant: id, session } }, 202);
  });

  for (const action of ["resume", "skip"] as const) {
    routes.post(`/tenants/:id/subscriptions/${action}`, (c) => {
      const { id } = parseWith(tenantParams, c.req.param(), "path");
      return parkingAction(c, id, "admin", action);
    });
  }

  routes.get("/tenants/:id/sessions/:session/storage", async (c) => {
    const { id, session } = parseWith(reindexParams, c.req.param(), "path");
    const agentStub = c.env.SESSIONS.get(
      c.env.SESSIONS.idFromName(sessionObjectName(id, session)),
    ) as unknown as SessionAgentRpc;
    const name = streamName(id, sessionPath(session));
    const agent = await unwrap(agentStub.storageStats());
    const stream = await unwrap(streamStub(c.env, name).storageStats());
    return c.json({ session, stream, agent });
  });

  return routes;
}
