/**
 * The shape of what a chat UI shows (see view.ts for the rules that reduce events into it):
 * messages, pending approvals, status, and the reducer's internal chunk buffers. Types and
 * the initial value only, so a page can type its state without importing the reducer.
 */
import type { JsonValue, SessionEvent, SessionStatus } from "./types";

/** Why a message's content is not shown although it exists. */
export interface NotLoaded {
  /**
   * missing: its chunks were not seen (the view started after them) or were evicted;
   * too_large: beyond the view's buffer bound; invalid: its chunks do not add up to its ref.
   */
  reason: "missing" | "too_large" | "invalid";
  /** UTF-8 bytes of the content, when known. */
  bytes: number | null;
}

export interface UserMessage {
  kind: "user";
  id: string;
  text: string;
  /** Set when the text exists but could not be assembled (then `text` is ""). */
  notLoaded: NotLoaded | null;
  offset: number;
  /** queued: waiting for the running turn to end; sent: its turn started; dropped: cancelled before it started. */
  status: "queued" | "sent" | "dropped";
  turnId: string | null;
}

export interface AssistantMessage {
  kind: "assistant";
  /** The model request's id. */
  id: string;
  turnId: string | null;
  text: string;
  /** Set when a chunked reply could not be assembled (`text` keeps what streamed, if anything). */
  notLoaded: NotLoaded | null;
  attempt: number;
  status: "streaming" | "completed" | "cancelled" | "failed";
  error: string | null;
  /** Next delta index expected in this attempt (repeats below it are ignored). */
  nextIndex: number;
}

export interface ToolMessage {
  kind: "tool";
  id: string;
  turnId: string | null;
  toolName: string;
  /** The arguments as the model wrote them (JSON text). */
  input: string;
  status:
    | "running"
    | "awaiting_approval"
    | "approved"
    | "denied"
    | "completed"
    | "failed"
    | "cancelled";
  result: JsonValue | null;
  /** Set when a chunked result could not be assembled (then `result` is null). */
  resultNotLoaded: NotLoaded | null;
  reason: string | null;
}

export type ViewMessage = UserMessage | AssistantMessage | ToolMessage;

export interface PendingApproval {
  toolCallId: string;
  toolName: string;
  args: JsonValue;
}

export interface SessionView {
  /** Offset of the last event reduced: resume reading after it. */
  lastOffset: number;
  status: SessionStatus;
  title: string;
  model: string;
  /** The running turn, if any. */
  turnId: string | null;
  /** True between a cancel request and the end of the turn it cancels. */
  cancelling: boolean;
  messages: ViewMessage[];
  pendingApprovals: PendingApproval[];
  lastError: string | null;
  /**
   * Chunks of large content awaiting the event that references them, by content id (in
   * arrival order, oldest first). Internal to the reducer; copied on write.
   */
  chunks: ReadonlyMap<string, ChunkBuffer>;
}

/** Buffered chunks of one content id. */
export interface ChunkBuffer {
  /** Chunk text and stream offset by index. */
  pieces: ReadonlyArray<{ text: string; offset: number } | undefined>;
  /** UTF-8 bytes buffered. */
  bytes: number;
  /** Chunks were refused because of the buffer bound. */
  overflowed: boolean;
}

/** Upper bound of buffered chunk text (UTF-8 bytes) across all content ids. */
export const MAX_BUFFERED_BYTES = 32 * 1024 * 1024;
/** Upper bound of content ids buffered at once. */
export const MAX_BUFFERED_CONTENTS = 64;

export const initialSessionView: SessionView = Object.freeze({
  lastOffset: 0,
  status: "idle",
  title: "",
  model: "",
  turnId: null,
  cancelling: false,
  messages: [],
  pendingApprovals: [],
  lastError: null,
  chunks: new Map(),
}) as SessionView;

/** The payload of a client-view event of type T. */
export type PayloadOf<T extends SessionEvent["type"]> = Extract<
  SessionEvent,
  { type: T }
>["payload"];
