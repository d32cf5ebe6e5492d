/**
 * Where a session lives, spelled once: its stream path (under its tenant), the name of its
 * SessionAgent object, the binding the stream reaches it through, and the subscription keys
 * of its processors. The HTTP edge, the agent and the tests all derive names from here.
 */
import { subscriptionKeyFor } from "../processors/host";
import { tenantScopedName } from "../tenant-names";

export const SESSION_BINDING = "SESSIONS";

/** Session streams live under this path prefix of their tenant. */
export const SESSION_STREAMS = "/sessions";
export const sessionPath = (sessionId: string) => `${SESSION_STREAMS}/${sessionId}`;
export const sessionObjectName = (tenant: string, sessionId: string) =>
  tenantScopedName(tenant, sessionId);

/** The processors every SessionAgent hosts (each has one subscription to the session stream). */
export const SESSION_PROCESSORS = ["agent", "model", "tools", "index"] as const;
export type SessionProcessor = (typeof SESSION_PROCESSORS)[number];

/** The subscription key of one of a session's processors. */
export const sessionProcessorKey = (
  processor: SessionProcessor,
  tenant: string,
  sessionId: string,
) => subscriptionKeyFor(processor, SESSION_BINDING, sessionObjectName(tenant, sessionId));

/** Which of a session's processors a subscription key belongs to (null: none). */
export const sessionProcessorOfKey = (
  key: string,
  tenant: string,
  sessionId: string,
): SessionProcessor | null =>
  SESSION_PROCESSORS.find((p) => key === sessionProcessorKey(p, tenant, sessionId)) ?? null;
