/**
 * The JSON the API answers with, as zod schemas: the OpenAPI document describes responses
 * with them, and the tests parse real responses with them, so the document cannot drift from
 * what the routes send. (Request schemas live next to their routes.)
 */
import { z } from "zod";
import { TOKEN_SCOPES } from "../auth/session-tokens";
import { callableSchema } from "../callables/descriptor";
import { type SessionIndexRow, sessionRowSchema } from "../db/sessions-index";
import { clientEventSchema } from "../sessions/client-view";
import { chatMessageSchema, SESSION_STATUSES } from "../sessions/events";
import { pendingApprovalSchema } from "../sessions/summary";

const offset = z
  .number()
  .int()
  .nonnegative()
  .describe("an event offset (the session's offset vocabulary)");

export const errorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
});

export const liveSchema = z.object({
  id: z.string(),
  status: z.enum(SESSION_STATUSES),
  title: z.string(),
  model: z.string(),
  pendingApprovals: z.array(pendingApprovalSchema),
  queuedMessages: z.number().int().nonnegative(),
  lastError: z.string().nullable(),
  messages: z
    .array(chatMessageSchema)
    .describe("the newest messages: at most 20 and 256 KB (page the rest with GET …/messages)"),
  messageCount: z.number().int().nonnegative().describe("messages in the transcript"),
  messagesFrom: z.number().int().nonnegative().describe("the transcript index of messages[0]"),
  lastOffset: offset.describe("the last event the session has processed"),
});

export const transcriptPageSchema = z.object({
  messages: z.array(
    z.intersection(chatMessageSchema, z.object({ index: z.number().int().nonnegative() })),
  ),
  messageCount: z.number().int().nonnegative(),
  next: z
    .number()
    .int()
    .nonnegative()
    .nullable()
    .describe("the `from` of the next page, or null at the end of the transcript"),
});

/**
 * A session's index row as the API answers it. `pendingApprovals` is the name the count had
 * before `pendingApprovalCount` (the list of pending approvals is `live.pendingApprovals`): it
 * stays, with the same value, for clients that read it.
 */
export const sessionRowJsonSchema = sessionRowSchema.extend({
  pendingApprovals: z
    .number()
    .int()
    .nonnegative()
    .meta({ deprecated: true, description: "the same as pendingApprovalCount (its former name)" }),
});
export const sessionRowJson = (row: SessionIndexRow): z.output<typeof sessionRowJsonSchema> => ({
  ...row,
  pendingApprovals: row.pendingApprovalCount,
});

export const sessionCreatedSchema = z.object({ session: liveSchema });
export const sessionSchema = z.object({
  session: sessionRowJsonSchema.extend({ live: liveSchema }),
});
export const sessionPageSchema = z.object({
  sessions: z.array(sessionRowJsonSchema),
  nextCursor: z.string().nullable(),
});
export const messageAcceptedSchema = z.object({
  offset: offset.describe(
    "the offset of the message's event; read ?offset=<offset - 1> to include it",
  ),
  messageId: z.string(),
  queued: z.boolean(),
});
export const decisionSchema = z.object({
  decision: z.object({
    toolCallId: z.string(),
    approved: z.boolean(),
    reason: z.string().nullable(),
  }),
});
export const cancelAcceptedSchema = z.object({ offset });
export const tokenSchema = z.object({
  token: z.string().describe("send as Authorization: Bearer, or ?token= on the events route"),
  expiresAt: z.iso.datetime(),
  scopes: z.array(z.enum(TOKEN_SCOPES)),
});
export const eventsSchema = z.array(clientEventSchema);

const subscriptionSchema = z.looseObject({
  key: z.string(),
  callable: callableSchema,
  eventTypes: z.array(z.string()),
  cursor: z.number().int(),
  lag: z.number().int(),
  status: z.string().describe("healthy, failing or parked"),
  attempts: z.number().int(),
  lastError: z.string().nullable(),
  nextRetryAt: z.string().nullable(),
});
export const subscriptionPutSchema = z.object({
  stream: z.string(),
  subscription: subscriptionSchema,
  secret: z.string().optional().describe("the webhook signing secret, shown once"),
});
export const subscriptionListSchema = z.object({
  stream: z.string(),
  subscriptions: z.array(subscriptionSchema),
});
export const subscriptionResumedSchema = z.object({
  stream: z.string(),
  subscription: subscriptionSchema,
});
export const subscriptionSkippedSchema = z.object({
  stream: z.string(),
  skipped: z.array(z.number().int()).describe("the offsets skipped"),
  subscription: subscriptionSchema,
});
