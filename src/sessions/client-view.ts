/**
 * The client view of a session stream: what a UI needs and nothing else. A session stream
 * also carries plumbing (`stream/*` events naming bindings and objects, idempotency keys,
 * metadata) and internal payloads (the system prompt, the conversation and the tool schemas
 * of old-format model requests). Browsers hold scoped tokens, not operator keys, so the
 * session event routes serve this view by default; operators read everything with
 * `?view=full` (API key only) or over the stream API.
 *
 * The view is an explicit allowlist: a type not listed here never reaches a client, and
 * each listed type has a projection (a zod schema whose unknown keys are stripped), so a
 * field added to an event later stays internal until it is added here. Offsets are kept:
 * left-out events leave gaps, and clients resume from the last offset they saw.
 *
 * Shapes old and new: a turn's input is its `session/input-added` (older `turn/started`
 * events also embed it, kept optional here), its reply the last `model/request-completed`
 * (`turn/completed` is projected to its id), and large content arrives as
 * `content/chunk-added` events before the event whose `contentRef`/`textRef`/`resultRef`
 * names them (the client reducer assembles them). Context compaction is left out: it changes
 * what the model is prompted with, not the conversation a user sees.
 *
 * Pure (zod and the event catalog only), so that it can be unit-tested and imported by
 * clients for its types.
 */
import { z } from "zod";
import { type SessionEventType, sessionEvents } from "./events";

const e = sessionEvents;

/** Event type → the payload a client sees. */
export const clientViewPayloads = {
  // The system prompt is the operator's, not the user's.
  "session/created": e["session/created"].pick({ title: true, model: true, tools: true }),
  "session/input-added": e["session/input-added"],
  "session/cancel-requested": e["session/cancel-requested"],
  "session/failed": e["session/failed"],
  "session/deleted": e["session/deleted"],
  // A turn names the input it answers (`messageId`, `inputOffset`: that input's event is in
  // the view); events written before issue 9 embedded the input's content as well.
  "turn/started": e["turn/started"].pick({
    turnId: true,
    messageId: true,
    inputOffset: true,
    content: true,
  }),
  // The reply is the turn's last model/request-completed (old events embedded it again).
  "turn/completed": e["turn/completed"].pick({ turnId: true }),
  "turn/cancelled": e["turn/cancelled"],
  // Only what ties a request (and its deltas) to a turn; not the prompt, history or tools.
  "model/request-requested": e["model/request-requested"].pick({
    requestId: true,
    turnId: true,
    model: true,
    messageCount: true,
  }),
  "model/request-started": e["model/request-started"],
  "model/delta-produced": e["model/delta-produced"],
  "model/request-completed": e["model/request-completed"],
  "model/request-failed": e["model/request-failed"],
  "tool/call-requested": e["tool/call-requested"],
  "tool/approval-requested": e["tool/approval-requested"],
  "tool/approval-decided": e["tool/approval-decided"],
  "tool/call-completed": e["tool/call-completed"],
  // The pieces of a large user message, reply or tool result (its event holds a `*Ref`).
  "content/chunk-added": e["content/chunk-added"],
} as const satisfies Partial<Record<SessionEventType, z.ZodType>>;

export type ClientEventType = keyof typeof clientViewPayloads;
export const CLIENT_EVENT_TYPES = Object.keys(clientViewPayloads) as ClientEventType[];

/** One event of the client view; `offset` is the event's offset in the session stream. */
export type ClientEvent = {
  [T in ClientEventType]: {
    offset: number;
    type: T;
    payload: z.output<(typeof clientViewPayloads)[T]>;
    createdAt: string;
  };
}[ClientEventType];

/** The client view's events as one zod schema (for the OpenAPI document and tests). */
export const clientEventSchema = z.discriminatedUnion(
  "type",
  nonEmpty(
    CLIENT_EVENT_TYPES.map((type) =>
      z.object({
        offset: z.number().int().positive(),
        type: z.literal(type),
        payload: clientViewPayloads[type],
        createdAt: z.string(),
      }),
    ),
  ),
);

/** The list as the non-empty tuple a zod union takes (the view always has event types). */
function nonEmpty<T>(items: readonly T[]): [T, ...T[]] {
  const [first, ...rest] = items;
  if (first === undefined) throw new Error("the client view lists no event types");
  return [first, ...rest];
}

/** What a stream reader decodes (src/streams/messages.ts StreamEvent, minus byte payloads). */
export interface ViewInput {
  offset: number;
  type: string | null;
  payload: unknown;
  metadata?: unknown;
  idempotencyKey?: string;
  createdAt: string;
}

/**
 * The client's form of one stream event, or null when the client view leaves it out: types
 * outside the allowlist, untyped messages, and payloads that do not match their schema.
 */
export function toClientEvent(event: ViewInput): ClientEvent | null {
  if (event.type === null || !Object.hasOwn(clientViewPayloads, event.type)) return null;
  const type = event.type as ClientEventType;
  const payload = clientViewPayloads[type].safeParse(event.payload);
  if (!payload.success) return null;
  return {
    offset: event.offset,
    type,
    payload: payload.data,
    createdAt: event.createdAt,
  } as ClientEvent;
}

export const SESSION_VIEWS = ["client", "full"] as const;
export type SessionView = (typeof SESSION_VIEWS)[number];
