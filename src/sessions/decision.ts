/**
 * The rule for deciding a tool call that awaits approval, apart from how the decision is
 * stored: an unknown call is 404; repeating the decision already taken is an idempotent
 * success; the opposite decision, or a call that is not awaiting approval, is 409. The stored
 * `tool/approval-decided` event has the last word: concurrent conflicting decisions share one
 * idempotency key, so exactly one is stored and the loser learns it from the stored payload.
 */
import { conflict, notFound } from "../errors/domain";
import type { ToolCallStatus } from "./contracts";

export interface Decision {
  toolCallId: string;
  approved: boolean;
  reason: string | null;
}

/** A call as the tools processor knows it (in progress, or finished). */
export interface DecidableCall {
  status: ToolCallStatus;
  decision?: { approved: boolean; reason: string | null } | null;
}

/**
 * The decision already taken that this one repeats, or null when this decision is to be
 * stored; throws when it cannot be taken.
 */
export function priorDecision(
  call: DecidableCall | null | undefined,
  toolCallId: string,
  approved: boolean,
): Decision | null {
  if (!call) throw notFound(`tool call ${toolCallId} not found`);
  const decided = call.decision;
  if (decided) {
    if (decided.approved === approved) return { toolCallId, approved, reason: decided.reason };
    throw conflict(
      `tool call ${toolCallId} was already ${decided.approved ? "approved" : "denied"}`,
    );
  }
  if (call.status !== "needs-approval" && call.status !== "awaiting") {
    throw conflict(`tool call ${toolCallId} is not awaiting approval (it is ${call.status})`);
  }
  return null;
}

/** The decision the stream stored for this call: this one, or a concurrent opposite (409). */
export function storedDecision(
  stored: { approved: boolean; reason: string | null },
  toolCallId: string,
  approved: boolean,
): Decision {
  if (stored.approved !== approved) {
    throw conflict(
      `tool call ${toolCallId} was already ${stored.approved ? "approved" : "denied"}`,
    );
  }
  return { toolCallId, approved, reason: stored.reason };
}
