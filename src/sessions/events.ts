/**
 * The session event catalog: every step of an agent session is one of these events on the
 * session's stream, with a zod payload schema. The processors' contracts pick their
 * `consumes`/`emits` from this one catalog, so producer and consumer can never disagree on
 * a payload's shape.
 */
import { z } from "zod";
import { contentChunkSchema, contentRefSchema } from "./content";

// Ids key records in processor state; `__proto__` cannot be an own key of a parsed record.
const id = z
  .string()
  .min(1)
  .max(200)
  .refine((s) => s !== "__proto__", "__proto__ is not a usable id");
const json = z.json();

/** A tool call as the model asked for it (the one shape: models, events and agent state use it). */
export const toolCallSchema = z.object({
  toolCallId: id,
  toolName: z.string().min(1).max(100),
  /** JSON-encoded arguments as the model produced them (may be invalid JSON). */
  input: z.string(),
});
export type ToolCall = z.infer<typeof toolCallSchema>;

/**
 * The conversation as the model sees it (provider-neutral). Large content is not embedded:
 * a `contentRef`/`resultRef` (content.ts) names the chunk events holding it, and the inline
 * field is then empty (`""` / `null`); the prompt builder reads the chunks.
 */
export const chatMessageSchema = z.discriminatedUnion("role", [
  z.object({
    role: z.literal("user"),
    content: z.string(),
    contentRef: contentRefSchema.optional(),
  }),
  z.object({
    role: z.literal("assistant"),
    content: z.string(),
    contentRef: contentRefSchema.optional(),
    toolCalls: z.array(toolCallSchema).default([]),
  }),
  z.object({
    role: z.literal("tool"),
    toolCallId: id,
    toolName: z.string(),
    result: json,
    /** The result's JSON text in chunks (then `result` is null). */
    resultRef: contentRefSchema.optional(),
    isError: z.boolean(),
  }),
]);
export type ChatMessage = z.infer<typeof chatMessageSchema>;

export const toolSpecSchema = z.object({
  name: z.string(),
  description: z.string(),
  inputSchema: json,
});

export const sessionEvents = {
  "session/created": z.object({
    title: z.string().max(200),
    model: z.string(),
    system: z.string().max(20_000),
    tools: z.array(z.string()),
  }),
  /** `content` inline (up to 100,000 chars; new events inline ≤ 64 KiB), or "" plus `contentRef`. */
  "session/input-added": z
    .object({
      messageId: id,
      content: z.string().max(100_000),
      contentRef: contentRefSchema.optional(),
    })
    .refine((p) => (p.content === "") !== (p.contentRef === undefined), {
      message: "exactly one of a non-empty content and a contentRef",
      path: ["content"],
    }),
  "session/cancel-requested": z.object({ reason: z.string().max(2_000).nullable() }),
  "session/failed": z.object({ error: z.string(), turnId: id.nullable() }),
  "session/deleted": z.object({}),
  /**
   * A turn answers the input at `inputOffset` (its content is in that `session/input-added`).
   * Events written before issue 9 embed the input's `content` (or "" plus `contentRef`)
   * instead; both are read.
   */
  "turn/started": z.object({
    turnId: id,
    messageId: id,
    inputOffset: z.number().int().positive().optional(),
    content: z.string().optional(),
    contentRef: contentRefSchema.optional(),
  }),
  /**
   * The reply is in the turn's last `model/request-completed`; old events embed `text`
   * (or "" plus `textRef`).
   */
  "turn/completed": z.object({
    turnId: id,
    text: z.string().optional(),
    textRef: contentRefSchema.optional(),
  }),
  "turn/cancelled": z.object({ turnId: id, reason: z.string().nullable() }),
  /**
   * Asks the model for the next step of a turn. The prompt is the session's system prompt and
   * tools (from `session/created`) and the first `messageCount` transcript messages, as the
   * agent has projected them through `throughOffset`. Requests written before issue 9 embed
   * `system`, `messages` and `tools` instead; the model processor honours both.
   */
  "model/request-requested": z.object({
    requestId: id,
    turnId: id,
    model: z.string(),
    messageCount: z.number().int().nonnegative().optional(),
    throughOffset: z.number().int().nonnegative().optional(),
    system: z.string().optional(),
    messages: z.array(chatMessageSchema).optional(),
    tools: z.array(toolSpecSchema).optional(),
  }),
  "model/request-started": z.object({ requestId: id, attempt: z.number().int().positive() }),
  "model/delta-produced": z.object({
    requestId: id,
    attempt: z.number().int().positive(),
    index: z.number().int().nonnegative(),
    text: z.string(),
  }),
  "model/request-completed": z.object({
    requestId: id,
    /** The reply inline, or "" with `textRef` naming its chunks. */
    text: z.string(),
    textRef: contentRefSchema.optional(),
    toolCalls: z.array(toolCallSchema),
    finishReason: z.string(),
  }),
  "model/request-failed": z.object({
    requestId: id,
    error: z.string(),
    status: z.number().int().nullable(),
    attempts: z.number().int().nonnegative(),
  }),
  /**
   * The transcript messages `[fromMessage, throughMessage)` no longer fit the model's context
   * budget next to the newer ones: they are summarised (by the model, for request `requestId`).
   */
  "context/compaction-requested": z.object({
    requestId: id,
    fromMessage: z.number().int().nonnegative(),
    throughMessage: z.number().int().nonnegative(),
  }),
  /** The summary that stands in for messages `[0, throughMessage)` in later prompts. */
  "context/compacted": z.object({
    requestId: id,
    fromMessage: z.number().int().nonnegative(),
    throughMessage: z.number().int().nonnegative(),
    summary: z.string(),
  }),
  "tool/call-requested": z.object({
    toolCallId: id,
    turnId: id,
    toolName: z.string(),
    input: z.string(),
    needsApproval: z.boolean(),
  }),
  "tool/approval-requested": z.object({ toolCallId: id, toolName: z.string(), args: json }),
  "tool/approval-decided": z.object({
    toolCallId: id,
    approved: z.boolean(),
    reason: z.string().max(2_000).nullable(),
  }),
  "tool/call-completed": z.object({
    toolCallId: id,
    toolName: z.string(),
    /** The result inline, or null with `resultRef` naming the chunks of its JSON text. */
    result: json,
    resultRef: contentRefSchema.optional(),
    isError: z.boolean(),
  }),
  /** One piece of large content, appended before the event whose `*Ref` names it (content.ts). */
  "content/chunk-added": contentChunkSchema,
} as const;

export type SessionEventType = keyof typeof sessionEvents;
export type SessionEventPayload<T extends SessionEventType> = z.output<(typeof sessionEvents)[T]>;

export const SESSION_STATUSES = [
  "idle",
  "running",
  "awaiting_approval",
  "failed",
  "cancelled",
  "deleted",
] as const;
export type SessionStatus = (typeof SESSION_STATUSES)[number];
