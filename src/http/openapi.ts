/**
 * The OpenAPI 3.1 description of the JSON API (sessions, subscriptions), served at
 * `GET /openapi.json` and rendered at `/docs`. Request schemas are the very zod schemas the
 * routes validate with, response schemas are those of api-schemas.ts (which the tests check
 * real responses against), all converted by zod's own JSON Schema support, so the document
 * cannot drift from the routes. Streams are described by the Durable Streams protocol and
 * only linked here.
 */
import { z } from "zod";
import { mintTokenSchema } from "../auth/session-tokens";
import {
  cancelAcceptedSchema,
  decisionSchema as decisionResultSchema,
  errorSchema,
  eventsSchema,
  liveSchema,
  messageAcceptedSchema,
  sessionCreatedSchema,
  sessionPageSchema,
  sessionSchema,
  subscriptionListSchema,
  subscriptionPutSchema,
  subscriptionResumedSchema,
  subscriptionSkippedSchema,
  tokenSchema,
  transcriptPageSchema,
} from "./api-schemas";
import {
  cancelSchema,
  createSchema,
  decisionSchema,
  listSchema,
  messageSchema,
  transcriptQuerySchema,
} from "./sessions";
import { putSchema, skipSchema } from "./subscriptions";

const json = (schema: z.ZodType) => z.toJSONSchema(schema, { io: "input", unrepresentable: "any" });
const out = (schema: z.ZodType) => z.toJSONSchema(schema, { io: "output", unrepresentable: "any" });
const body = (schema: z.ZodType, required = true) => ({
  required,
  content: { "application/json": { schema: json(schema) } },
});
const ok = (description: string, schema: z.ZodType) => ({
  description,
  content: { "application/json": { schema: out(schema) } },
});
const errors = {
  "4XX": {
    description:
      "Invalid input (400), missing or invalid credentials (401), a session token without the scope or on a tenant-level route (403), unknown resource (404), conflict (409): `{ error: { code, message, details? } }`",
    content: { "application/json": { schema: out(errorSchema) } },
  },
};
/** Routes a session token may call, with the scope it needs (API keys reach every route). */
const tokenOr = (scope: string) => ({
  security: [{ apiKey: [] }, { sessionToken: [scope] }],
  description: `API key, or a session token with the \`${scope}\` scope.`,
});
const path = (name: string, description: string) => ({
  name,
  in: "path",
  required: true,
  schema: { type: "string" },
  description,
});
const query = (name: string, required = false, description?: string) => ({
  name,
  in: "query",
  required,
  schema: { type: "string" },
  ...(description ? { description } : {}),
});
const sessionId = path("id", "session id (ULID)");

export function openApiDocument() {
  const listQuery = Object.keys(listSchema.shape).map((name) => query(name));
  return {
    openapi: "3.1.0",
    info: {
      title: "Durable agent sessions",
      version: "0.1.0",
      description:
        "Agent sessions whose every step is an event on a resumable stream. Streams themselves are served at /v1/stream/<path> over the Durable Streams protocol (https://github.com/durable-streams/durable-streams).",
    },
    components: {
      securitySchemes: {
        apiKey: { type: "http", scheme: "bearer", description: "A tenant API key (servers only)." },
        sessionToken: {
          type: "http",
          scheme: "bearer",
          bearerFormat: "JWT",
          description:
            "A session token from POST /v1/sessions/{id}/tokens (for browsers): one session, scopes read / write / approve, at most 1 h. Also accepted as ?token= on the events route.",
        },
      },
      schemas: { SessionLive: out(liveSchema), ClientEvent: out(eventsSchema.element) },
    },
    security: [{ apiKey: [] }],
    paths: {
      "/v1/sessions": {
        post: {
          summary: "Create a session",
          requestBody: body(createSchema),
          responses: { "201": ok("The session", sessionCreatedSchema), ...errors },
        },
        get: {
          summary: "List sessions, newest first",
          parameters: listQuery,
          responses: {
            "200": ok("A page of sessions and nextCursor", sessionPageSchema),
            ...errors,
          },
        },
      },
      "/v1/sessions/{id}": {
        parameters: [sessionId],
        get: {
          summary:
            "The session's index row and live state (with the newest messages: at most 20 and 256 KB; messageCount, messagesFrom)",
          ...tokenOr("read"),
          responses: { "200": ok("The session", sessionSchema), ...errors },
        },
        delete: {
          security: [{ apiKey: [] }],
          summary: "Delete a session (its stream is closed)",
          responses: { "204": { description: "Deleted" }, ...errors },
        },
      },
      "/v1/sessions/{id}/messages": {
        parameters: [sessionId],
        post: {
          summary: "Send a message (queued while a turn runs, answered after it)",
          ...tokenOr("write"),
          description:
            "The body may be up to 8 MiB (a larger one is a 413 naming the limit). Content over 64 KiB is stored as content/chunk-added events and referenced by session/input-added (contentRef).",
          requestBody: body(messageSchema),
          responses: { "202": ok("The message was accepted", messageAcceptedSchema), ...errors },
        },
        get: {
          ...tokenOr("read"),
          summary:
            "A page of the transcript, oldest first (from = first message index, limit <= 200, at most ~1 MB of content)",
          parameters: Object.keys(transcriptQuerySchema.shape).map((name) => query(name)),
          responses: {
            "200": ok("A page of the transcript", transcriptPageSchema),
            ...errors,
          },
        },
      },
      "/v1/sessions/{id}/events": {
        parameters: [
          sessionId,
          query(
            "offset",
            false,
            "Read the events after this offset: an event offset (integer) or a Stream-Next-Offset value; -1 = from the start, now = from the tail",
          ),
          query("live", false, "long-poll or sse (Durable Streams live modes)"),
          query("view", false, "client (default: what a UI needs) or full (API key only)"),
          query("token", false, "a session token, for EventSource (this route only)"),
          {
            name: "Last-Event-ID",
            in: "header",
            required: false,
            schema: { type: "string" },
            description: "EventSource view: resume after this offset (wins over ?offset)",
          },
        ],
        get: {
          summary:
            "The session's events: Durable Streams reads (catch-up, long-poll, SSE data/control), or with Accept: text/event-stream and no `live`, an EventSource stream (one unnamed event per session event, id = offset)",
          ...tokenOr("read"),
          responses: {
            "200": {
              description:
                "Events of the view, each with its offset (left-out events leave gaps). Stream-Next-Offset names where to continue.",
              content: {
                "application/json": { schema: out(eventsSchema) },
                "text/event-stream": {
                  schema: { type: "string" },
                  description:
                    "EventSource: `id: <offset>` and `data: <ClientEvent>` per event, `event: closed` at the end of a deleted session. live=sse: `event: data` (an array of events) and `event: control` ({ streamNextOffset, streamCursor, upToDate })",
                },
              },
            },
            "204": { description: "Long-poll timeout: nothing new" },
            ...errors,
          },
        },
      },
      "/v1/sessions/{id}/tokens": {
        parameters: [sessionId],
        post: {
          summary: "Mint a session token for a browser (API key only)",
          security: [{ apiKey: [] }],
          requestBody: body(mintTokenSchema),
          responses: {
            "201": ok("The token (it is not stored: keep it)", tokenSchema),
            "503": {
              description: "SESSION_TOKEN_SECRET is not configured",
              content: { "application/json": { schema: out(errorSchema) } },
            },
            ...errors,
          },
        },
      },
      "/v1/sessions/{id}/tokens/revoke": {
        parameters: [sessionId],
        post: {
          summary: "Revoke every token minted for the session so far (API key only)",
          security: [{ apiKey: [] }],
          responses: { "204": { description: "Revoked" }, ...errors },
        },
      },
      "/v1/sessions/{id}/tool-calls/{toolCallId}/decision": {
        parameters: [sessionId, path("toolCallId", "the tool call awaiting approval")],
        post: {
          summary: "Approve or deny a tool call (repeating the same decision is idempotent)",
          ...tokenOr("approve"),
          requestBody: body(decisionSchema),
          responses: { "200": ok("The decision", decisionResultSchema), ...errors },
        },
      },
      "/v1/sessions/{id}/cancel": {
        parameters: [sessionId],
        post: {
          summary: "Cancel the running turn",
          ...tokenOr("write"),
          requestBody: body(cancelSchema, false),
          responses: { "202": ok("The cancel request's offset", cancelAcceptedSchema), ...errors },
        },
      },
      "/v1/subscriptions": {
        put: {
          summary:
            "Create a subscription (201, with a webhook secret shown once; 200 when identical; 409 when different)",
          requestBody: body(putSchema),
          responses: {
            "201": ok("Created", subscriptionPutSchema),
            "200": ok("Already exists", subscriptionPutSchema),
            ...errors,
          },
        },
        get: {
          summary: "A stream's subscriptions with their status",
          parameters: [query("stream", true)],
          responses: { "200": ok("Subscriptions", subscriptionListSchema), ...errors },
        },
        delete: {
          summary: "Remove a subscription",
          parameters: [query("stream", true), query("key", true)],
          responses: { "204": { description: "Removed" }, ...errors },
        },
      },
      "/v1/subscriptions/resume": {
        post: {
          summary:
            "Resume a parked subscription: retry from its cursor (409 when it is not parked)",
          parameters: [query("stream", true), query("key", true)],
          responses: {
            "200": ok("The resumed subscription", subscriptionResumedSchema),
            ...errors,
          },
        },
      },
      "/v1/subscriptions/skip": {
        post: {
          summary:
            "Skip the event a parked subscription is stuck on (recorded with who skipped it; 409 when it is not parked or `offset` is not the stuck one)",
          parameters: [query("stream", true), query("key", true)],
          requestBody: body(skipSchema, false),
          responses: { "200": ok("What was skipped", subscriptionSkippedSchema), ...errors },
        },
      },
    },
  };
}
