/**
 * The client's types, taken from the server's own modules (type-only imports: nothing of the
 * server is bundled). Request bodies are the routes' zod schemas' input types; answers are
 * the types the route handlers serialize. Nothing here is written out by hand.
 */
import type { z } from "zod";
import type { SessionIndexRow, SessionPage } from "../db/sessions-index";
import type {
  cancelSchema,
  createSchema,
  decisionSchema,
  listSchema,
  messageSchema,
} from "../http/sessions";
import type { SessionStatus } from "../sessions/events";
import type { SessionAgentRpc, SessionLive } from "../sessions/session-agent";
import type { SessionEvent } from "../sessions/summary";
import type { JsonValue } from "../streams/messages";

export type { JsonValue, SessionEvent, SessionLive, SessionStatus };

export type CreateSessionInput = z.input<typeof createSchema>;
export type SendMessageInput = z.input<typeof messageSchema>;
export type DecisionInput = z.input<typeof decisionSchema>;
export type CancelInput = z.input<typeof cancelSchema>;
export type ListSessionsQuery = Partial<z.input<typeof listSchema>>;

/** `POST /v1/sessions` → 201. */
export type CreatedSession = SessionLive;
/** `GET /v1/sessions`. */
export type SessionList = SessionPage;
/** `GET /v1/sessions/:id`: the index row plus the live state. */
export type SessionDetail = SessionIndexRow & { live: SessionLive };
/** `POST /v1/sessions/:id/messages` → 202. */
export type SentMessage = Awaited<ReturnType<SessionAgentRpc["sendMessage"]>>;
/** `POST /v1/sessions/:id/tool-calls/:toolCallId/decision` → 200 `{ decision }`. */
export type Decision = Awaited<ReturnType<SessionAgentRpc["decide"]>>;
/** `POST /v1/sessions/:id/cancel` → 202. */
export type Cancelled = Awaited<ReturnType<SessionAgentRpc["cancel"]>>;
