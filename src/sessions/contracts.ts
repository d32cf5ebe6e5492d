/**
 * The contracts of the four session processors, all drawn from the one session catalog.
 */
import { z } from "zod";
import { defineContract } from "../processors/contract";
import { subscriptionKeySchema, systemEventSchemas } from "../streams/system-events";
import { agentStateSchema, initialAgentState } from "./conversation";
import { sessionEvents } from "./events";
import { summarySchema } from "./summary";

export const agentContract = defineContract({
  name: "agent",
  version: 1,
  events: sessionEvents,
  consumes: [
    "session/created",
    "session/input-added",
    "session/cancel-requested",
    "session/failed",
    "session/deleted",
    "turn/started",
    "turn/completed",
    "turn/cancelled",
    "model/request-requested",
    "model/request-completed",
    "model/request-failed",
    "tool/call-requested",
    "tool/approval-requested",
    "tool/approval-decided",
    "tool/call-completed",
  ],
  emits: [
    "turn/started",
    "turn/completed",
    "turn/cancelled",
    "session/failed",
    "model/request-requested",
    "tool/call-requested",
  ],
  state: agentStateSchema,
  initialState: initialAgentState,
});

export const modelContract = defineContract({
  name: "model",
  version: 1,
  events: sessionEvents,
  consumes: [
    "model/request-requested",
    "model/request-started",
    "model/request-completed",
    "model/request-failed",
    "context/compacted",
    "session/cancel-requested",
    "turn/cancelled",
    "session/deleted",
  ],
  emits: [
    "model/request-started",
    "model/delta-produced",
    "content/chunk-added",
    "model/request-completed",
    "model/request-failed",
    "context/compaction-requested",
    "context/compacted",
  ],
  state: z.object({
    requests: z
      .record(
        z.string(),
        z.object({
          offset: z.number().int(),
          turnId: z.string(),
          model: z.string(),
          attempts: z.number().int(),
        }),
      )
      .default({}),
  }),
  initialState: { requests: {} },
});

const toolCallStatus = z.enum([
  "needs-approval",
  "awaiting",
  "approved",
  "denied",
  "done",
  "cancelled",
]);
export type ToolCallStatus = z.infer<typeof toolCallStatus>;

export const toolsContract = defineContract({
  name: "tools",
  version: 1,
  events: sessionEvents,
  consumes: [
    "session/created",
    "tool/call-requested",
    "tool/approval-requested",
    "tool/approval-decided",
    "tool/call-completed",
    "turn/cancelled",
    "session/deleted",
  ],
  emits: ["tool/approval-requested", "tool/call-completed", "content/chunk-added"],
  state: z.object({
    /** Tools enabled for this session (from session/created). */
    enabled: z.array(z.string()).default([]),
    /**
     * Calls still in progress. A call leaves state when it completes or is cancelled; its
     * outcome (status, decision) is then a row of the processor's `decided` table.
     */
    calls: z
      .record(
        z.string(),
        z.object({
          toolName: z.string(),
          input: z.string(),
          turnId: z.string(),
          status: toolCallStatus,
          causeAt: z.number().int(),
          decision: z
            .object({ approved: z.boolean(), reason: z.string().nullable(), at: z.number().int() })
            .nullable(),
        }),
      )
      .default({}),
  }),
  initialState: { enabled: [], calls: {} },
});

/**
 * The stream's own health events about subscriptions. The index consumes them (named
 * explicitly: `*` never matches the reserved `stream/` domain) so that a session whose
 * processor is parked shows `failed` in D1, and recovers when it is resumed or skipped.
 */
export const parkingEvents = {
  "stream/subscriber-parked": systemEventSchemas["stream/subscriber-parked"],
  "stream/subscriber-resumed": systemEventSchemas["stream/subscriber-resumed"],
  "stream/subscriber-skipped": systemEventSchemas["stream/subscriber-skipped"],
  "stream/subscriber-recovered": systemEventSchemas["stream/subscriber-recovered"],
} as const;

export const parkedSubscriptionSchema = z.object({
  key: subscriptionKeySchema,
  stuckOffset: z.number().int(),
  error: z.string(),
});
export type ParkedSubscription = z.infer<typeof parkedSubscriptionSchema>;

export const indexContract = defineContract({
  name: "index",
  version: 1,
  events: { ...sessionEvents, ...parkingEvents },
  consumes: [
    "stream/subscriber-parked",
    "stream/subscriber-resumed",
    "stream/subscriber-skipped",
    "stream/subscriber-recovered",
    "session/created",
    "session/failed",
    "session/deleted",
    "turn/started",
    "turn/completed",
    "turn/cancelled",
    "tool/approval-requested",
    "tool/approval-decided",
  ],
  emits: [],
  state: z.object({
    summary: summarySchema.default(summarySchema.parse({})),
    createdAt: z.string().nullable().default(null),
    updatedAt: z.string().nullable().default(null),
    /** The session's own subscriptions that are parked now (bounded: one per processor). */
    parked: z.array(parkedSubscriptionSchema).max(20).default([]),
  }),
  initialState: { summary: summarySchema.parse({}), createdAt: null, updatedAt: null, parked: [] },
});
