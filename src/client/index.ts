/**
 * The package entry point `durable-agent-sessions/client`: a typed client of the session API,
 * its resumable event iterator, and the pure reducer from events to what a chat UI shows.
 * Browser-safe: no Node or Workers imports. The capnweb client is its own entry point
 * (`durable-agent-sessions/client/rpc`), so an HTTP-only page does not bundle capnweb.
 */
export {
  createSessionClient,
  SessionClient,
  type SessionClientOptions,
} from "./client";
export { SessionApiError } from "./errors";
export { type EventsOptions, resumableEvents } from "./events";
export type * from "./types";
export {
  type AssistantMessage,
  initialSessionView,
  type NotLoaded,
  type PendingApproval,
  reduceSessionEvents,
  reduceSessionView,
  type SessionView,
  streamingMessage,
  type ToolMessage,
  type UserMessage,
  type ViewMessage,
} from "./view";
