/**
 * The session API a web app drives over plain HTTP. Inputs are zod-validated here; each
 * action becomes an event appended by the session's SessionAgent Durable Object, and the
 * session list is read from the D1 index.
 *
 *   POST   /v1/sessions                                   { title?, model?, system?, tools? } → 201
 *   GET    /v1/sessions?status=&limit=&cursor=            newest first, from D1
 *   GET    /v1/sessions/:id                               D1 row + live state (pending approvals)
 *   POST   /v1/sessions/:id/messages                      { content, idempotencyKey? } → 202
 *          (a message sent while a turn runs is queued and answered after that turn; the body
 *          may be up to 8 MiB, like a stream append: content over 64 KiB is stored in chunks)
 *   GET    /v1/sessions/:id/messages?from=&limit=         a page of the transcript (oldest first)
 *   GET    /v1/sessions/:id/events                        the session stream (Durable Streams
 *          reads with offset/live, or EventSource SSE with `id:` offsets and Last-Event-ID)
 *   POST   /v1/sessions/:id/tool-calls/:toolCallId/decision { approved, reason? } → 200
 *   POST   /v1/sessions/:id/cancel                        → 202
 *   DELETE /v1/sessions/:id                               → 204, stream closed
 *   POST   /v1/sessions/:id/tokens                        { scopes, ttlSeconds? } → 201 token
 *   POST   /v1/sessions/:id/tokens/revoke                 → 204, every token so far refused
 *
 * Offsets: one vocabulary, the integer offset of an event ("after event N" when given as a
 * position); routes that return offsets return these, and the events route accepts them (and
 * the Durable Streams wire form of the same position) in `?offset=` and `Last-Event-ID`.
 * Access: API keys reach everything; session tokens only their session's routes with the
 * scope each route names (`access(...)`, src/http/session-access.ts).
 */
import { Hono } from "hono";
import { ulid } from "ulidx";
import { z } from "zod";
import { forbidden } from "../auth/principal";
import { mintSessionToken, mintTokenSchema, tokenSecret } from "../auth/session-tokens";
import { createDb } from "../db/client";
import {
  getSessionRow,
  listSessionRows,
  MAX_LIST_LIMIT,
  sessionStatusSchema,
} from "../db/sessions-index";
import { SESSION_VIEWS } from "../sessions/client-view";
import { MAX_INPUT_CONTENT_BYTES, utf8Bytes } from "../sessions/content";
import { defaultModelSpec, modelSpecSchema } from "../sessions/models/registry";
import { sessionPath } from "../sessions/naming";
import { builtinTools, DEFAULT_TOOLS } from "../sessions/tools/builtin";
import { INTERNAL, MAX_BODY_BYTES } from "../streams/protocol/handler";
import { trace } from "../trace";
import type * as api from "./api-schemas";
import type { AppEnv } from "./app";
import { ApiError, notFound } from "./errors";
import { access, agent, rpc } from "./session-access";
import { forwardToStream } from "./stream-proxy";
import { jsonInput, paramInput, queryInput } from "./validators";

const sessionId = z.string().regex(/^[0-9A-HJKMNP-TV-Z]{26}$/, "session ids are ULIDs");
const idParams = z.object({ id: sessionId });
const toolCallParams = z.object({ id: sessionId, toolCallId: z.string().min(1).max(200) });

export const eventsQuerySchema = z.object({
  offset: z.string().max(64).optional(),
  live: z.string().max(20).optional(),
  cursor: z.string().max(64).optional(),
  view: z.enum(SESSION_VIEWS).default("client"),
  token: z.string().optional(),
});

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
  /** Up to MAX_INPUT_CONTENT_BYTES UTF-8 bytes (checked after parsing: a 413). */
  content: z.string().min(1),
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

export function sessionRoutes() {
  return new Hono<AppEnv>()
    .post("/", jsonInput(createSchema), async (c) => {
      const body = c.req.valid("json");
      const id = ulid();
      const live = await rpc(() =>
        agent(c, id).create({
          tenant: c.get("tenant"),
          sessionId: id,
          title: body.title ?? "",
          model: body.model ?? defaultModelSpec(c.env),
          system: body.system ?? "",
          tools: body.tools ?? DEFAULT_TOOLS,
        }),
      );
      return c.json({ session: live } satisfies z.input<typeof api.sessionCreatedSchema>, 201);
    })
    .get("/", queryInput(listSchema), async (c) => {
      const page = await listSessionRows(createDb(c.env.DB), c.get("tenant"), c.req.valid("query"));
      return c.json(page satisfies z.input<typeof api.sessionPageSchema>, 200);
    })
    .get("/:id", paramInput(idParams), access("read"), async (c) => {
      const { id } = c.req.valid("param");
      const row = await getSessionRow(createDb(c.env.DB), c.get("tenant"), id);
      if (!row) throw notFound("session not found");
      const live = await rpc(() => agent(c, id).live());
      return c.json({ session: { ...row, live } } satisfies z.input<typeof api.sessionSchema>, 200);
    })
    .post(
      "/:id/messages",
      paramInput(idParams),
      access("write"),
      jsonInput(messageSchema, { maxBytes: MAX_BODY_BYTES }),
      async (c) => {
        const { id } = c.req.valid("param");
        const body = c.req.valid("json");
        const bytes = utf8Bytes(body.content);
        if (bytes > MAX_INPUT_CONTENT_BYTES)
          throw new ApiError(
            413,
            "payload_too_large",
            `content of ${bytes} bytes exceeds the ${MAX_INPUT_CONTENT_BYTES}-byte limit of a message`,
            { limitBytes: MAX_INPUT_CONTENT_BYTES },
          );
        trace("http.message.received", () => ({ stream: sessionPath(id) }));
        const result = await rpc(() => agent(c, id).sendMessage(body.content, body.idempotencyKey));
        trace("http.message.answered", () => ({
          stream: sessionPath(id),
          offsets: [result.offset],
        }));
        return c.json(result satisfies z.input<typeof api.messageAcceptedSchema>, 202);
      },
    )
    .get(
      "/:id/messages",
      paramInput(idParams),
      access("read"),
      queryInput(transcriptQuerySchema),
      async (c) => {
        const { id } = c.req.valid("param");
        const q = c.req.valid("query");
        const row = await getSessionRow(createDb(c.env.DB), c.get("tenant"), id);
        if (!row) throw notFound("session not found");
        const page = await rpc(() => agent(c, id).messages(q.from, q.limit));
        return c.json(page satisfies z.input<typeof api.transcriptPageSchema>, 200);
      },
    )
    .get(
      "/:id/events",
      paramInput(idParams),
      access("read"),
      queryInput(eventsQuerySchema),
      (c) => {
        const { id } = c.req.valid("param");
        const q = c.req.valid("query");
        if (q.view === "full" && c.get("principal").kind !== "api-key") {
          throw forbidden("view=full (every event, with internal payloads) needs an API key");
        }
        // A browser EventSource asks for text/event-stream and names no Durable Streams mode.
        const eventSource =
          q.live === undefined && (c.req.header("accept") ?? "").includes("text/event-stream");
        return forwardToStream(c, sessionPath(id), {
          [INTERNAL.view]: q.view,
          ...(eventSource ? { [INTERNAL.eventSource]: "1" } : {}),
        });
      },
    )
    .post(
      "/:id/tool-calls/:toolCallId/decision",
      paramInput(toolCallParams),
      access("approve"),
      jsonInput(decisionSchema),
      async (c) => {
        const { id, toolCallId } = c.req.valid("param");
        const body = c.req.valid("json");
        const decision = await rpc(() =>
          agent(c, id).decide(toolCallId, body.approved, body.reason ?? null),
        );
        return c.json({ decision } satisfies z.input<typeof api.decisionSchema>, 200);
      },
    )
    .post(
      "/:id/cancel",
      paramInput(idParams),
      access("write"),
      jsonInput(cancelSchema, { optional: true }),
      async (c) => {
        const { id } = c.req.valid("param");
        const body = c.req.valid("json");
        const result = await rpc(() => agent(c, id).cancel(body.reason ?? null));
        return c.json(result satisfies z.input<typeof api.cancelAcceptedSchema>, 202);
      },
    )
    .delete("/:id", paramInput(idParams), access(null), async (c) => {
      const { id } = c.req.valid("param");
      await rpc(() => agent(c, id).remove());
      return c.body(null, 204);
    })
    .post(
      "/:id/tokens",
      paramInput(idParams),
      access(null),
      jsonInput(mintTokenSchema),
      async (c) => {
        const { id } = c.req.valid("param");
        const body = c.req.valid("json");
        const secret = tokenSecret(c.env);
        const generation = await rpc(() => agent(c, id).tokenGeneration());
        const minted = await mintSessionToken(secret, {
          tenant: c.get("tenant"),
          sessionId: id,
          scopes: body.scopes,
          ttlSeconds: body.ttlSeconds,
          generation,
        });
        return c.json(minted satisfies z.input<typeof api.tokenSchema>, 201);
      },
    )
    .post("/:id/tokens/revoke", paramInput(idParams), access(null), async (c) => {
      const { id } = c.req.valid("param");
      await rpc(() => agent(c, id).revokeTokens());
      return c.body(null, 204);
    });
}

/** The session routes' types (requests and responses), for `hc` clients. */
export type SessionRoutes = ReturnType<typeof sessionRoutes>;
