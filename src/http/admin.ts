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
import { type Context, Hono } from "hono";
import { z } from "zod";
import { bearerToken, forgetKey } from "../auth/authenticate";
import { dbOf } from "../db/client";
import { createApiKey, createTenant, revokeApiKey, tenantIdSchema } from "../db/tenants";
import { DomainError, forbidden, notFound } from "../errors/domain";
import { unwrap } from "../rpc/result";
import { secretsEqual } from "../secrets";
import { sessionAgentStub } from "../sessions/agent-rpc";
import { sessionIdSchema } from "../sessions/ids";
import { sessionPath } from "../sessions/naming";
import { streamAccess } from "../sessions/stream-access";
import { streamName } from "../streams/naming";
import type { AppEnv } from "./app";
import { addressSchema, resumeParked, skipParked, skipSchema } from "./subscriptions";
import { jsonInput, paramInput, queryInput } from "./validators";

const nameSchema = z.string().trim().min(1).max(200);
const createTenantSchema = z.strictObject({ id: tenantIdSchema.optional(), name: nameSchema });
const createKeySchema = z.strictObject({ name: nameSchema });
const tenantParams = z.object({ id: tenantIdSchema });
const keyParams = z.object({ id: tenantIdSchema, prefix: z.string().regex(/^[0-9a-f]{8}$/) });
const reindexParams = z.object({
  id: tenantIdSchema,
  session: sessionIdSchema,
});

/** The SessionAgent of `tenant`'s session. */
const agentOf = (c: Context<AppEnv>, tenant: string, session: string) =>
  sessionAgentStub(c.env.SESSIONS, tenant, session);

export function adminRoutes() {
  return new Hono<AppEnv>()
    .use("*", async (c, next) => {
      const token = c.env.ADMIN_TOKEN;
      if (!token) throw notFound(`no route for ${c.req.method} ${new URL(c.req.url).pathname}`);
      const header = c.req.header("authorization");
      const presented = header === undefined ? null : bearerToken(header);
      if (presented === null) {
        // The admin realm is its own: the edge's WWW-Authenticate names it (src/http/errors.ts).
        throw new DomainError(
          "unauthorized",
          "admin routes need Authorization: Bearer <ADMIN_TOKEN>",
          { realm: "durable-agent-sessions-admin" },
        );
      }
      if (!(await secretsEqual(presented, token))) {
        throw forbidden("invalid admin token");
      }
      await next();
      c.header("cache-control", "no-store");
    })
    .post("/tenants", jsonInput(createTenantSchema), async (c) => {
      const tenant = await createTenant(dbOf(c.env), c.req.valid("json"));
      return c.json({ tenant }, 201);
    })
    .post("/tenants/:id/keys", paramInput(tenantParams), jsonInput(createKeySchema), async (c) => {
      const { id } = c.req.valid("param");
      const { name } = c.req.valid("json");
      const created = await createApiKey(dbOf(c.env), id, name);
      return c.json(created, 201);
    })
    .delete("/tenants/:id/keys/:prefix", paramInput(keyParams), async (c) => {
      const { id, prefix } = c.req.valid("param");
      forgetKey(prefix);
      if (!(await revokeApiKey(dbOf(c.env), id, prefix))) {
        throw notFound(`tenant ${id} has no key ${prefix}`);
      }
      return c.body(null, 204);
    })
    .post("/tenants/:id/sessions/:session/reindex", paramInput(reindexParams), async (c) => {
      const { id, session } = c.req.valid("param");
      await unwrap(agentOf(c, id, session).reindex());
      return c.json({ reindexing: { tenant: id, session } }, 202);
    })
    .post(
      "/tenants/:id/subscriptions/resume",
      paramInput(tenantParams),
      queryInput(addressSchema),
      async (c) =>
        c.json(await resumeParked(c, c.req.valid("param").id, "admin", c.req.valid("query")), 200),
    )
    .post(
      "/tenants/:id/subscriptions/skip",
      paramInput(tenantParams),
      queryInput(addressSchema),
      jsonInput(skipSchema, { optional: true }),
      async (c) => {
        const { id } = c.req.valid("param");
        const answer = await skipParked(c, id, "admin", c.req.valid("query"), c.req.valid("json"));
        return c.json(answer, 200);
      },
    )
    .get("/tenants/:id/sessions/:session/storage", paramInput(reindexParams), async (c) => {
      const { id, session } = c.req.valid("param");
      const streamStub = streamAccess(c.env.STREAMS, streamName(id, sessionPath(session)));
      const agent = await unwrap(agentOf(c, id, session).storageStats());
      const stream = await streamStub.storageStats();
      return c.json({ session, stream, agent }, 200);
    });
}

/** The operator routes' types (requests and responses), for `hc` clients. */
export type AdminRoutes = ReturnType<typeof adminRoutes>;
