/**
 * The session API a web app drives over plain HTTP. Inputs are zod-validated by validator
 * middleware; each action becomes an event appended by the session's SessionAgent Durable
 * Object, and the session list is read from the D1 index. The routes below are the one list
 * of the API: each `describe`s itself, and /openapi.json (rendered at /docs) is generated
 * from them. A message may be up to 8 MiB, like a stream append (content over 64 KiB is
 * stored in chunks); one sent while a turn runs is queued and answered after that turn.
 *
 * Offsets: one vocabulary, the integer offset of an event ("after event N" when given as a
 * position); routes that return offsets return these, and the events route accepts them (and
 * the Durable Streams wire form of the same position) in `?offset=` and `Last-Event-ID`.
 * Access: API keys reach everything; session tokens only their session's routes with the
 * scope each route names (`access(...)`, src/http/session-access.ts).
 */
import { Hono } from "hono";
import { z } from "zod";
import { mintSessionToken, mintTokenSchema, tokenSecret } from "../auth/session-tokens";
import { createDb } from "../db/client";
import {
  getSessionRow,
  indexedStatusSchema,
  listSessionRows,
  MAX_LIST_LIMIT,
} from "../db/sessions-index";
import { readModelSettings } from "../env";
import { forbidden, notFound, tooLarge } from "../errors/domain";
import { SESSION_VIEWS } from "../sessions/client-view";
import { MAX_INPUT_CONTENT_BYTES, utf8Bytes } from "../sessions/content";
import { newSessionId, sessionIdSchema } from "../sessions/ids";
import { modelSpecSchema } from "../sessions/models/registry";
import { sessionPath } from "../sessions/naming";
import { builtinTools, DEFAULT_TOOLS } from "../sessions/tools/builtin";
import { INTERNAL, MAX_BODY_BYTES } from "../streams/protocol/handler";
import { trace } from "../trace";
import * as api from "./api-schemas";
import type { AppEnv } from "./app";
import { describe, json } from "./route-docs";
import { access, agent, rpc } from "./session-access";
import { forwardToStream } from "./stream-proxy";
import { jsonInput, paramInput, queryInput } from "./validators";

const sessionId = sessionIdSchema.describe("session id (ULID)");
const idParams = z.object({ id: sessionId });
const toolCallParams = z.object({
  id: sessionId,
  toolCallId: z.string().min(1).max(200).describe("the tool call awaiting approval"),
});

export const eventsQuerySchema = z.object({
  offset: z
    .string()
    .max(64)
    .optional()
    .describe(
      "Read the events after this offset: an event offset (integer) or a Stream-Next-Offset value; -1 = from the start, now = from the tail",
    ),
  live: z.string().max(20).optional().describe("long-poll or sse (Durable Streams live modes)"),
  cursor: z.string().max(64).optional().describe("the Stream-Cursor of the previous live read"),
  view: z
    .enum(SESSION_VIEWS)
    .default("client")
    .describe("client (default: what a UI needs) or full (API key only)"),
  token: z.string().optional().describe("a session token, for EventSource (this route only)"),
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
  status: indexedStatusSchema.optional(),
  limit: z.coerce.number().int().min(1).max(MAX_LIST_LIMIT).default(20),
  cursor: z.string().max(500).optional(),
});

export function sessionRoutes() {
  return new Hono<AppEnv>()
    .post(
      "/",
      describe({
        summary: "Create a session",
        responses: { 201: json("The session", api.sessionCreatedSchema) },
      }),
      jsonInput(createSchema),
      async (c) => {
        const body = c.req.valid("json");
        const id = newSessionId();
        const live = await rpc(() =>
          agent(c, id).create({
            tenant: c.get("tenant"),
            sessionId: id,
            title: body.title ?? "",
            model: body.model ?? readModelSettings(c.env).defaultModel,
            system: body.system ?? "",
            tools: body.tools ?? DEFAULT_TOOLS,
          }),
        );
        return c.json({ session: live } satisfies z.input<typeof api.sessionCreatedSchema>, 201);
      },
    )
    .get(
      "/",
      describe({
        summary: "List sessions, newest first",
        responses: { 200: json("A page of sessions and nextCursor", api.sessionPageSchema) },
      }),
      queryInput(listSchema),
      async (c) => {
        const page = await listSessionRows(
          createDb(c.env.DB),
          c.get("tenant"),
          c.req.valid("query"),
        );
        return c.json(
          { ...page, sessions: page.sessions.map(api.sessionRowJson) } satisfies z.input<
            typeof api.sessionPageSchema
          >,
          200,
        );
      },
    )
    .get(
      "/:id",
      describe({
        summary:
          "The session's index row and live state (with the newest messages: at most 20 and 256 KB; messageCount, messagesFrom)",
        responses: { 200: json("The session", api.sessionSchema) },
      }),
      paramInput(idParams),
      access("read"),
      async (c) => {
        const { id } = c.req.valid("param");
        const row = await getSessionRow(createDb(c.env.DB), c.get("tenant"), id);
        if (!row) throw notFound("session not found");
        const live = await rpc(() => agent(c, id).live());
        return c.json(
          { session: { ...api.sessionRowJson(row), live } } satisfies z.input<
            typeof api.sessionSchema
          >,
          200,
        );
      },
    )
    .post(
      "/:id/messages",
      describe({
        summary: "Send a message (queued while a turn runs, answered after it)",
        description:
          "The body may be up to 8 MiB (a larger one is a 413 naming the limit). Content over 64 KiB is stored as content/chunk-added events and referenced by session/input-added (contentRef).",
        responses: { 202: json("The message was accepted", api.messageAcceptedSchema) },
      }),
      paramInput(idParams),
      access("write"),
      jsonInput(messageSchema, { maxBytes: MAX_BODY_BYTES }),
      async (c) => {
        const { id } = c.req.valid("param");
        const body = c.req.valid("json");
        // A UTF-16 code unit is at most 3 UTF-8 bytes: only long content needs encoding to count.
        const bytes =
          body.content.length * 3 > MAX_INPUT_CONTENT_BYTES ? utf8Bytes(body.content) : 0;
        if (bytes > MAX_INPUT_CONTENT_BYTES)
          throw tooLarge(
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
      describe({
        summary:
          "A page of the transcript, oldest first (from = first message index, limit <= 200, at most ~1 MB of content)",
        responses: { 200: json("A page of the transcript", api.transcriptPageSchema) },
      }),
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
      describe({
        summary:
          "The session's events: Durable Streams reads (catch-up, long-poll, SSE data/control), or with Accept: text/event-stream and no `live`, an EventSource stream (one unnamed event per session event, id = offset)",
        parameters: [
          {
            name: "Last-Event-ID",
            in: "header",
            required: false,
            schema: { type: "string" },
            description: "EventSource view: resume after this offset (wins over ?offset)",
          },
        ],
        responses: {
          200: {
            description:
              "Events of the view, each with its offset (left-out events leave gaps). Stream-Next-Offset names where to continue.",
            schema: api.eventsSchema,
            alsoAs: {
              "text/event-stream": {
                schema: { type: "string" },
                description:
                  "EventSource: `id: <offset>` and `data: <ClientEvent>` per event, `event: closed` at the end of a deleted session. live=sse: `event: data` (an array of events) and `event: control` ({ streamNextOffset, streamCursor, upToDate })",
              },
            },
          },
          204: { description: "Long-poll timeout: nothing new" },
        },
      }),
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
      describe({
        summary: "Approve or deny a tool call (repeating the same decision is idempotent)",
        responses: { 200: json("The decision", api.decisionSchema) },
      }),
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
      describe({
        summary: "Cancel the running turn",
        responses: { 202: json("The cancel request's offset", api.cancelAcceptedSchema) },
      }),
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
    .delete(
      "/:id",
      describe({
        summary: "Delete a session (its stream is closed)",
        responses: { 204: { description: "Deleted" } },
      }),
      paramInput(idParams),
      access(null),
      async (c) => {
        const { id } = c.req.valid("param");
        await rpc(() => agent(c, id).remove());
        return c.body(null, 204);
      },
    )
    .post(
      "/:id/tokens",
      describe({
        summary: "Mint a session token for a browser (API key only)",
        responses: {
          201: json("The token (it is not stored: keep it)", api.tokenSchema),
          503: json("SESSION_TOKEN_SECRET is not configured", api.errorSchema),
        },
      }),
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
    .post(
      "/:id/tokens/revoke",
      describe({
        summary: "Revoke every token minted for the session so far (API key only)",
        responses: { 204: { description: "Revoked" } },
      }),
      paramInput(idParams),
      access(null),
      async (c) => {
        const { id } = c.req.valid("param");
        await rpc(() => agent(c, id).revokeTokens());
        return c.body(null, 204);
      },
    );
}

/** The session routes' types (requests and responses), for `hc` clients. */
export type SessionRoutes = ReturnType<typeof sessionRoutes>;
