/**
 * The OpenAPI 3.1 description of the JSON API (sessions, subscriptions), served at
 * `GET /openapi.json`. Request schemas are the very zod schemas the routes validate with,
 * converted by zod's own JSON Schema support, so the document cannot drift from validation.
 * Streams are described by the Durable Streams protocol and only linked here.
 */
import { z } from "zod";
import {
  cancelSchema,
  createSchema,
  decisionSchema,
  listSchema,
  messageSchema,
  transcriptQuerySchema,
} from "./sessions";
import { putSchema } from "./subscriptions";

const json = (schema: z.ZodType) => z.toJSONSchema(schema, { io: "input", unrepresentable: "any" });
const body = (schema: z.ZodType, required = true) => ({
  required,
  content: { "application/json": { schema: json(schema) } },
});
const ok = (description: string) => ({
  description,
  content: { "application/json": { schema: {} } },
});
const errors = {
  "4XX": {
    description:
      "Invalid input, unknown resource or conflict: `{ error: { code, message, details? } }`",
    content: {
      "application/json": {
        schema: json(
          z.object({
            error: z.object({
              code: z.string(),
              message: z.string(),
              details: z.unknown().optional(),
            }),
          }),
        ),
      },
    },
  },
};
const path = (name: string, description: string) => ({
  name,
  in: "path",
  required: true,
  schema: { type: "string" },
  description,
});
const query = (name: string, required = false) => ({
  name,
  in: "query",
  required,
  schema: { type: "string" },
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
    components: { securitySchemes: { apiKey: { type: "http", scheme: "bearer" } } },
    security: [{ apiKey: [] }],
    paths: {
      "/v1/sessions": {
        post: {
          summary: "Create a session",
          requestBody: body(createSchema),
          responses: { "201": ok("The session"), ...errors },
        },
        get: {
          summary: "List sessions, newest first",
          parameters: listQuery,
          responses: { "200": ok("A page of sessions and nextCursor"), ...errors },
        },
      },
      "/v1/sessions/{id}": {
        parameters: [sessionId],
        get: {
          summary:
            "The session's index row and live state (with the newest messages: at most 20 and 256 KB; messageCount, messagesFrom)",
          responses: { "200": ok("The session"), ...errors },
        },
        delete: {
          summary: "Delete a session (its stream is closed)",
          responses: { "204": { description: "Deleted" }, ...errors },
        },
      },
      "/v1/sessions/{id}/messages": {
        parameters: [sessionId],
        post: {
          summary: "Send a message (queued while a turn runs, answered after it)",
          requestBody: body(messageSchema),
          responses: { "202": ok("{ offset, messageId, queued }"), ...errors },
        },
        get: {
          summary:
            "A page of the transcript, oldest first (from = first message index, limit <= 200, at most ~1 MB of content)",
          parameters: Object.keys(transcriptQuerySchema.shape).map((name) => query(name)),
          responses: {
            "200": ok("{ messages: [{ index, role, … }], messageCount, next }"),
            ...errors,
          },
        },
      },
      "/v1/sessions/{id}/events": {
        parameters: [sessionId, query("offset"), query("live")],
        get: {
          summary:
            "The session stream: Durable Streams reads, or EventSource SSE (Accept: text/event-stream, Last-Event-ID)",
          responses: {
            "200": { description: "Events" },
            "204": { description: "Long-poll timeout" },
            ...errors,
          },
        },
      },
      "/v1/sessions/{id}/tool-calls/{toolCallId}/decision": {
        parameters: [sessionId, path("toolCallId", "the tool call awaiting approval")],
        post: {
          summary: "Approve or deny a tool call (repeating the same decision is idempotent)",
          requestBody: body(decisionSchema),
          responses: { "200": ok("The decision"), ...errors },
        },
      },
      "/v1/sessions/{id}/cancel": {
        parameters: [sessionId],
        post: {
          summary: "Cancel the running turn",
          requestBody: body(cancelSchema, false),
          responses: { "202": ok("{ offset }"), ...errors },
        },
      },
      "/v1/subscriptions": {
        put: {
          summary:
            "Create a subscription (201, with a webhook secret shown once; 200 when identical; 409 when different)",
          requestBody: body(putSchema),
          responses: { "201": ok("Created"), "200": ok("Already exists"), ...errors },
        },
        get: {
          summary: "A stream's subscriptions with their status",
          parameters: [query("stream", true)],
          responses: { "200": ok("Subscriptions"), ...errors },
        },
        delete: {
          summary: "Remove a subscription",
          parameters: [query("stream", true), query("key", true)],
          responses: { "204": { description: "Removed" }, ...errors },
        },
      },
    },
  };
}
