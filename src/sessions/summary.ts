/**
 * The session's status line — status, pending approvals, last error, title, model — reduced
 * from its events. It is its own small pure reducer because two processors need exactly the
 * same answer: the agent (to orchestrate) and the index (to mirror it into D1).
 *
 *   idle → running → awaiting_approval → running → … → idle | failed | cancelled
 */
import { z } from "zod";
import type { CatalogEvent } from "../processors/contract";
import { SESSION_STATUSES, type sessionEvents } from "./events";

export const pendingApprovalSchema = z.object({
  toolCallId: z.string(),
  toolName: z.string(),
  args: z.json(),
});

export const summarySchema = z.object({
  status: z.enum(SESSION_STATUSES).default("idle"),
  title: z.string().default(""),
  model: z.string().default(""),
  pendingApprovals: z.array(pendingApprovalSchema).default([]),
  lastError: z.string().nullable().default(null),
  /** Turn currently running, if any. */
  turnId: z.string().nullable().default(null),
});
export type SessionSummary = z.infer<typeof summarySchema>;

export const initialSummary: SessionSummary = summarySchema.parse({});

/** Any event of the session catalog, as a processor receives it. */
export type SessionEvent = CatalogEvent<typeof sessionEvents>;

export function reduceSummary(summary: SessionSummary, event: SessionEvent): SessionSummary {
  if (summary.status === "deleted") return summary;
  switch (event.type) {
    case "session/created":
      return { ...summary, status: "idle", title: event.payload.title, model: event.payload.model };
    case "turn/started":
      return { ...summary, status: "running", turnId: event.payload.turnId, lastError: null };
    case "tool/approval-requested":
      if (summary.turnId === null) return summary;
      return {
        ...summary,
        status: "awaiting_approval",
        pendingApprovals: [
          ...summary.pendingApprovals.filter((p) => p.toolCallId !== event.payload.toolCallId),
          {
            toolCallId: event.payload.toolCallId,
            toolName: event.payload.toolName,
            args: event.payload.args,
          },
        ],
      };
    case "tool/approval-decided": {
      const pendingApprovals = summary.pendingApprovals.filter(
        (p) => p.toolCallId !== event.payload.toolCallId,
      );
      const status =
        summary.turnId !== null && pendingApprovals.length === 0 ? "running" : summary.status;
      return { ...summary, pendingApprovals, status };
    }
    case "turn/completed":
      if (summary.turnId !== event.payload.turnId) return summary;
      return { ...summary, status: "idle", turnId: null, pendingApprovals: [] };
    case "turn/cancelled":
      if (summary.turnId !== event.payload.turnId) return summary;
      return { ...summary, status: "cancelled", turnId: null, pendingApprovals: [] };
    case "session/failed":
      return {
        ...summary,
        status: "failed",
        turnId: null,
        pendingApprovals: [],
        lastError: event.payload.error,
      };
    case "session/deleted":
      return { ...summary, status: "deleted", turnId: null, pendingApprovals: [] };
    default:
      return summary;
  }
}
