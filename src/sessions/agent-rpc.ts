/**
 * The SessionAgent's RPC surface, declared once: the class implements `SessionAgentRpc`, the
 * worker's `SESSIONS` binding is typed by it, and `sessionAgentStub` is the one way to reach
 * a session's object. Why not `DurableObjectNamespace<SessionAgent>`? The generated stub type
 * maps every answer through workerd's `Rpc` serialisation types, and for answers that carry
 * the transcript tsc gives up ("type instantiation is excessively deep", TS2589); callers then
 * cast. Declaring the binding by the interface the class implements keeps the compiler
 * checking both sides (the class against the interface, callers against the interface)
 * without a cast anywhere.
 */
import { durableIdFromName } from "../durable-ids";
import type { RpcResult } from "../rpc/result";
import type { DeliveryBatch } from "../streams/delivery";
import type { ChatMessage } from "./events";
import { sessionObjectName } from "./naming";
import type { SessionSummary } from "./summary";

export interface CreateSessionInput {
  tenant: string;
  sessionId: string;
  title: string;
  model: string;
  system: string;
  tools: string[];
}

export interface SessionLive {
  id: string;
  status: SessionSummary["status"];
  title: string;
  model: string;
  pendingApprovals: SessionSummary["pendingApprovals"];
  queuedMessages: number;
  lastError: string | null;
  /**
   * The newest messages of the transcript (at most LIVE_MESSAGES and LIVE_MESSAGE_BYTES; the
   * whole transcript is paged by `messages()`, GET /v1/sessions/:id/messages).
   */
  messages: ChatMessage[];
  /** How many messages the transcript holds, and the index of `messages[0]`. */
  messageCount: number;
  messagesFrom: number;
  lastOffset: number;
}

export interface TranscriptPage {
  messages: (ChatMessage & { index: number })[];
  messageCount: number;
  /** Index to ask for next, or null at the end of the transcript. */
  next: number | null;
}

export interface StorageStats {
  databaseSize: number;
  transcriptBytes: number;
  messageCount: number;
}

export interface SessionAgentRpc {
  create(input: CreateSessionInput): Promise<RpcResult<SessionLive>>;
  live(): Promise<RpcResult<SessionLive>>;
  messages(from: number, limit: number): Promise<RpcResult<TranscriptPage>>;
  storageStats(): Promise<RpcResult<StorageStats>>;
  sendMessage(
    content: string,
    idempotencyKey?: string,
  ): Promise<RpcResult<{ offset: number; messageId: string; queued: boolean }>>;
  decide(
    toolCallId: string,
    approved: boolean,
    reason: string | null,
  ): Promise<RpcResult<{ toolCallId: string; approved: boolean; reason: string | null }>>;
  cancel(reason: string | null): Promise<RpcResult<{ offset: number }>>;
  remove(): Promise<RpcResult<void>>;
  reindex(): Promise<RpcResult<void>>;
  tokenGeneration(): Promise<RpcResult<number>>;
  revokeTokens(): Promise<RpcResult<{ generation: number }>>;
  /** The callable's method: deliveries from the session stream (src/processors/host.ts). */
  deliver(batch: DeliveryBatch): Promise<RpcResult<{ ackOffset: number }>>;
}

/** A SessionAgent's stub: a Durable Object stub (for fetch and the test helpers) with its RPC. */
export type SessionAgentStub = DurableObjectStub & SessionAgentRpc;

/** The `SESSIONS` binding, as this app uses it (see the opening comment). */
export interface SessionAgentNamespace {
  idFromName(name: string): DurableObjectId;
  get(id: DurableObjectId): SessionAgentStub;
}

/** A fresh stub of one session's SessionAgent (its id computed once: src/durable-ids.ts). */
export function sessionAgentStub(
  sessions: SessionAgentNamespace,
  tenant: string,
  sessionId: string,
): SessionAgentStub {
  return sessions.get(durableIdFromName(sessions, sessionObjectName(tenant, sessionId)));
}
