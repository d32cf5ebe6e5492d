/**
 * The session API a web app drives over plain HTTP. Inputs are zod-validated here; each
 * action becomes an event appended by the session's SessionAgent Durable Object, and the
 * session list is read from the D1 index.
 *
 *   POST   /v1/sessions                                   { title?, model?, system?, tools? } → 201
 *   GET    /v1/sessions?status=&limit=&cursor=            newest first, from D1
 *   GET    /v1/sessions/:id                               D1 row + live state (pending approvals)
 *   POST   /v1/sessions/:id/messages                      { content, idempotencyKey? } → 202
 *          (a message sent while a turn runs is queued and answered after that turn)
 *   GET    /v1/sessions/:id/messages?from=&limit=         a page of the transcript (oldest first)
 *   GET    /v1/sessions/:id/events                        the session stream (Durable Streams
 *          reads with offset/live, or EventSource SSE with `id:` offsets and Last-Event-ID)
 *   POST   /v1/sessions/:id/tool-calls/:toolCallId/decision { approved, reason? } → 200
 *   POST   /v1/sessions/:id/cancel                        → 202
 *   DELETE /v1/sessions/:id                               → 204, stream closed
 */
import { type Context, Hono } from "hono";
import { ulid } from "ulidx";
import { z } from "zod";
import { createDb } from "../db/client";
import {
  getSessionRow,
  listSessionRows,
  MAX_LIST_LIMIT,
  sessionStatusSchema,
} from "../db/sessions-index";
import { defaultModelSpec, modelSpecSchema } from "../sessions/models/registry";
import { type SessionAgentRpc, sessionObjectName, sessionPath } from "../sessions/session-agent";
import { builtinTools } from "../sessions/tools/builtin";
import { INTERNAL } from "../streams/protocol/handler";
import type { AppEnv } from "./app";
import { ApiError, notFound } from "./errors";
import { forwardToStream } from "./stream-proxy";
import { jsonBody, parseWith, query } from "./validation";

const sessionId = z.string().regex(/^[0-9A-HJKMNP-TV-Z]{26}$/, "session ids are ULIDs");

export const createSchema = z.strictObject({
  title: z.string().max(200).optional(),
  model: modelSpecSchema.optional(),
  system: z.string().max(20_000).optional(),
  tools: z
    .array(z.string())
    .max(50)
    .refine((names) => names.every((n) => builtinTools.get(n) !== null), {
      message: `tools must be among: ${builtinTools.names().join(", ")}`,
    })
    .optional(),
});

export const messageSchema = z.strictObject({
  content: z.string().min(1).max(100_000),
  idempotencyKey: z.string().min(1).max(200).optional(),
});

export const decisionSchema = z.strictObject({
  approved: z.boolean(),
  reason: z.string().max(2_000).nullish(),
});

export const cancelSchema = z.strictObject({ reason: z.string().max(2_000).nullish() });

export const transcriptQuerySchema = z.object({
  from: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});

export const listSchema = z.object({
  status: sessionStatusSchema.optional(),
  limit: z.coerce.number().int().min(1).max(MAX_LIST_LIMIT).default(20),
  cursor: z.string().max(500).optional(),
});

type C = Context<AppEnv>;

function agent(c: C, id: string): SessionAgentRpc {
  return c.env.SESSIONS.get(
    c.env.SESSIONS.idFromName(sessionObjectName(c.get("tenant"), id)),
  ) as unknown as SessionAgentRpc;
}

async function rpc<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw ApiError.from(error);
  }
}

const idParam = (c: C) => parseWith(sessionId, c.req.param("id"), "session id");

export function sessionRoutes() {
  const routes = new Hono<AppEnv>();

  routes.post("/", async (c) => {
    const body = await jsonBody(c, createSchema);
    const id = ulid();
    const live = await rpc(() =>
      agent(c, id).create({
        tenant: c.get("tenant"),
        sessionId: id,
        title: body.title ?? "",
        model: body.model ?? defaultModelSpec(c.env),
        system: body.system ?? "",
        tools: body.tools ?? builtinTools.names(),
      }),
    );
    return c.json({ session: live }, 201);
  });

  routes.get("/", async (c) => {
    const q = query(c, listSchema);
    const page = await listSessionRows(createDb(c.env.DB), c.get("tenant"), q);
    return c.json(page);
  });

  routes.get("/:id", async (c) => {
    const id = idParam(c);
    const row = await getSessionRow(createDb(c.env.DB), c.get("tenant"), id);
    if (!row) throw notFound("session not found");
    const live = await rpc(() => agent(c, id).live());
    return c.json({ session: { ...row, live } });
  });

  routes.post("/:id/messages", async (c) => {
    const id = idParam(c);
    const body = await jsonBody(c, messageSchema);
    const result = await rpc(() => agent(c, id).sendMessage(body.content, body.idempotencyKey));
    return c.json(result, 202);
  });

  routes.get("/:id/messages", async (c) => {
    const id = idParam(c);
    const q = query(c, transcriptQuerySchema);
    const row = await getSessionRow(createDb(c.env.DB), c.get("tenant"), id);
    if (!row) throw notFound("session not found");
    const page = await rpc(() => agent(c, id).messages(q.from, q.limit));
    return c.json(page);
  });

  routes.get("/:id/events", async (c) => {
    const id = idParam(c);
    const url = new URL(c.req.url);
    const eventSource =
      !url.searchParams.has("live") &&
      !url.searchParams.has("offset") &&
      (c.req.header("accept") ?? "").includes("text/event-stream");
    return forwardToStream(c, sessionPath(id), eventSource ? { [INTERNAL.eventSource]: "1" } : {});
  });

  routes.post("/:id/tool-calls/:toolCallId/decision", async (c) => {
    const id = idParam(c);
    const toolCallId = parseWith(
      z.string().min(1).max(200),
      c.req.param("toolCallId"),
      "tool call id",
    );
    const body = await jsonBody(c, decisionSchema);
    const decision = await rpc(() =>
      agent(c, id).decide(toolCallId, body.approved, body.reason ?? null),
    );
    return c.json({ decision }, 200);
  });

  routes.post("/:id/cancel", async (c) => {
    const id = idParam(c);
    const body = await jsonBody(c, cancelSchema, { optional: true });
    const result = await rpc(() => agent(c, id).cancel(body.reason ?? null));
    return c.json(result, 202);
  });

  routes.delete("/:id", async (c) => {
    const id = idParam(c);
    await rpc(() => agent(c, id).remove());
    return c.body(null, 204);
  });

  return routes;
}
