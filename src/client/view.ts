/**
 * What a chat UI shows, reduced from a session's events: messages (user, assistant, tool),
 * the text streaming for the running model request, pending approvals, status and last error.
 * It is pure and idempotent — an event at or below `lastOffset` changes nothing — so a page
 * may feed it replays, resumed streams and pushes from several transports without care.
 *
 * The rules a UI would otherwise get wrong:
 * - Retries: a model request is retried as attempt n+1; its deltas restart from the
 *   beginning, so the text of an earlier attempt is dropped when a later one starts, and late
 *   deltas of an earlier attempt are ignored.
 * - Cancel: text that arrives after `session/cancel-requested` (the model is being aborted)
 *   is stale and discarded; the partial reply stays, marked `cancelled`.
 * - Repeated deltas (same attempt and index) are ignored.
 * - It does not need `model/request-requested` (a client view may leave it out): a request
 *   it has not seen announced belongs to the running turn.
 *
 * - Large content: `content/chunk-added` events come before the event whose ref
 *   (`contentRef`, `textRef`, `resultRef`) names them. Their text is buffered per content id
 *   until that event takes it (then the buffer is dropped), bounded by MAX_BUFFERED_BYTES and
 *   MAX_BUFFERED_CONTENTS (the oldest buffers, i.e. orphans, go first). Assembly checks each
 *   chunk's index and offset and the total UTF-8 byte count (not the SHA-256: that would need
 *   async crypto in a synchronous reducer). Content that cannot be assembled — its chunks came
 *   before the view started, were evicted, or do not match — is marked `notLoaded` with its
 *   byte size instead of showing as empty.
 * - Older and newer event shapes: `turn/started` may or may not embed the input (the input is
 *   its `session/input-added`), and `turn/completed` may or may not repeat the reply (the
 *   reply is the request's `model/request-completed`).
 *
 * It imports no runtime code from the server (only types), so it bundles for browsers
 * (which is why it measures UTF-8 itself rather than importing src/sessions/content.ts).
 */
import type { JsonValue, SessionEvent, SessionStatus } from "./types";
import { addChunk, takeContent } from "./view-content";
import type {
  AssistantMessage,
  NotLoaded,
  PayloadOf as Of,
  SessionView,
  ToolMessage,
  UserMessage,
  ViewMessage,
} from "./view-model";

export * from "./view-model";

/** Reduces one event. Returns the same object when the event changes nothing. */
export function reduceSessionView(view: SessionView, event: SessionEvent): SessionView {
  if (event.offset <= view.lastOffset) return view;
  const next = apply({ ...view, lastOffset: event.offset }, event);
  return next;
}

/** Reduces many events (e.g. a page of history) in order. */
export function reduceSessionEvents(
  view: SessionView,
  events: Iterable<SessionEvent>,
): SessionView {
  let out = view;
  for (const event of events) out = reduceSessionView(out, event);
  return out;
}

/** The assistant message still streaming, if any (the running request's current attempt). */
export function streamingMessage(view: SessionView): AssistantMessage | null {
  for (let i = view.messages.length - 1; i >= 0; i--) {
    const m = view.messages[i]!;
    if (m.kind === "assistant" && m.status === "streaming") return m;
  }
  return null;
}

function apply(view: SessionView, event: SessionEvent): SessionView {
  if (view.status === "deleted") return view;
  switch (event.type) {
    case "session/created":
      return { ...view, title: event.payload.title, model: event.payload.model };
    case "content/chunk-added":
      return addChunk(view, event.offset, event.payload);
    case "session/input-added":
      return addInput(view, event.offset, event.payload);
    case "turn/started":
      return startTurn(view, event.payload);
    case "model/request-requested":
      return ensureRequest(view, event.payload.requestId, event.payload.turnId, 1);
    case "model/request-started":
      return startAttempt(view, event.payload);
    case "model/delta-produced":
      return addDelta(view, event.payload);
    case "model/request-completed":
      return completeRequest(view, event.payload);
    case "model/request-failed":
      return updateAssistant(view, event.payload.requestId, (m) =>
        m.status === "streaming" ? { ...m, status: "failed", error: event.payload.error } : m,
      );
    case "tool/call-requested":
      return addToolCall(view, event.payload);
    case "tool/approval-requested":
      return requestApproval(view, event.payload);
    case "tool/approval-decided":
      return decide(view, event.payload);
    case "tool/call-completed":
      return completeTool(view, event.payload);
    case "session/cancel-requested":
      return {
        ...view,
        cancelling: view.turnId !== null,
        messages: view.messages.map((m) =>
          m.kind === "user" && m.status === "queued" ? { ...m, status: "dropped" } : m,
        ),
      };
    case "turn/completed":
      if (view.turnId !== event.payload.turnId) return view;
      return endTurn(view, "idle");
    case "turn/cancelled":
      if (view.turnId !== event.payload.turnId) return view;
      return endTurn(view, "cancelled");
    case "session/failed":
      return { ...endTurn(view, "failed"), lastError: event.payload.error };
    case "session/deleted":
      return { ...endTurn(view, "deleted") };
    default:
      return view;
  }
}

function addInput(view: SessionView, offset: number, p: Of<"session/input-added">): SessionView {
  if (view.messages.some((m) => m.kind === "user" && m.id === p.messageId)) return view;
  let text = p.content;
  let notLoaded: NotLoaded | null = null;
  if (p.contentRef) {
    const taken = takeContent(view, p.contentRef);
    view = taken.view;
    text = taken.text ?? "";
    notLoaded = taken.notLoaded;
  }
  const message: UserMessage = {
    kind: "user",
    id: p.messageId,
    text,
    notLoaded,
    offset,
    status: "queued",
    turnId: null,
  };
  return { ...view, messages: [...view.messages, message] };
}

function startTurn(view: SessionView, p: Of<"turn/started">): SessionView {
  let found = false;
  const messages: ViewMessage[] = view.messages.map((m) => {
    if (m.kind !== "user" || m.id !== p.messageId) return m;
    found = true;
    return { ...m, status: "sent", turnId: p.turnId };
  });
  if (!found) {
    // The input event was not seen (the view started mid-stream): show the turn's input if it
    // embeds it (older events), else say it is not loaded.
    const text = p.content ?? "";
    messages.push({
      kind: "user",
      id: p.messageId,
      text,
      notLoaded: text === "" ? { reason: "missing", bytes: null } : null,
      offset: 0,
      status: "sent",
      turnId: p.turnId,
    });
  }
  return {
    ...view,
    messages,
    turnId: p.turnId,
    cancelling: false,
    status: "running",
    lastError: null,
  };
}

const findAssistant = (view: SessionView, requestId: string) =>
  view.messages.findIndex((m) => m.kind === "assistant" && m.id === requestId);

/** Adds the assistant message of a request of the running turn (not after a cancel). */
function ensureRequest(
  view: SessionView,
  requestId: string,
  turnId: string | null,
  attempt: number,
): SessionView {
  if (findAssistant(view, requestId) >= 0) return view;
  if (view.turnId === null || view.cancelling) return view;
  if (turnId !== null && turnId !== view.turnId) return view;
  const message: AssistantMessage = {
    kind: "assistant",
    id: requestId,
    turnId: view.turnId,
    text: "",
    notLoaded: null,
    attempt,
    status: "streaming",
    error: null,
    nextIndex: 0,
  };
  return { ...view, messages: [...view.messages, message] };
}

function updateAssistant(
  view: SessionView,
  requestId: string,
  change: (m: AssistantMessage) => AssistantMessage | null,
): SessionView {
  const i = findAssistant(view, requestId);
  if (i < 0) return view;
  const before = view.messages[i] as AssistantMessage;
  const after = change(before);
  if (after === before) return view;
  const messages = [...view.messages];
  if (after === null) messages.splice(i, 1);
  else messages[i] = after;
  return { ...view, messages };
}

function startAttempt(view: SessionView, p: Of<"model/request-started">): SessionView {
  const withRequest = ensureRequest(view, p.requestId, null, p.attempt);
  return updateAssistant(withRequest, p.requestId, (m) =>
    m.status === "streaming" && p.attempt > m.attempt
      ? { ...m, attempt: p.attempt, text: "", nextIndex: 0 }
      : m,
  );
}

function addDelta(view: SessionView, p: Of<"model/delta-produced">): SessionView {
  const withRequest = ensureRequest(view, p.requestId, null, p.attempt);
  return updateAssistant(withRequest, p.requestId, (m) => {
    if (m.status !== "streaming" || withRequest.cancelling) return m; // stale
    if (p.attempt < m.attempt) return m; // an earlier attempt's late output
    if (p.attempt > m.attempt) {
      return { ...m, attempt: p.attempt, text: p.text, nextIndex: p.index + 1 };
    }
    if (p.index < m.nextIndex) return m; // repeated
    return { ...m, text: m.text + p.text, nextIndex: p.index + 1 };
  });
}

function completeRequest(view: SessionView, p: Of<"model/request-completed">): SessionView {
  let text: string = p.text;
  let notLoaded: NotLoaded | null = null;
  if (p.textRef) {
    const taken = takeContent(view, p.textRef);
    view = taken.view;
    text = taken.text ?? "";
    notLoaded = taken.notLoaded;
  }
  const withRequest = ensureRequest(view, p.requestId, null, 1);
  return updateAssistant(withRequest, p.requestId, (m) => {
    if (m.status !== "streaming" || withRequest.cancelling) return m; // stale
    // The streamed text stands in (marked) for a chunked reply that cannot be assembled.
    if (notLoaded) return { ...m, notLoaded, status: "completed" };
    // A reply that only calls tools has no text: its tool calls follow as their own messages.
    if (text === "") return null;
    return { ...m, text, status: "completed" };
  });
}

function completeTool(view: SessionView, p: Of<"tool/call-completed">): SessionView {
  let result = p.result as JsonValue;
  let resultNotLoaded: NotLoaded | null = null;
  if (p.resultRef) {
    const taken = takeContent(view, p.resultRef);
    view = taken.view;
    resultNotLoaded = taken.notLoaded;
    result = null;
    if (taken.text !== null) {
      try {
        result = JSON.parse(taken.text) as JsonValue;
      } catch {
        resultNotLoaded = { reason: "invalid", bytes: p.resultRef.bytes };
      }
    }
  }
  return updateTool(view, p.toolCallId, (m) => ({
    ...m,
    status: p.isError ? "failed" : "completed",
    result,
    resultNotLoaded,
  }));
}

const findTool = (view: SessionView, toolCallId: string) =>
  view.messages.findIndex((m) => m.kind === "tool" && m.id === toolCallId);

function updateTool(
  view: SessionView,
  toolCallId: string,
  change: (m: ToolMessage) => ToolMessage,
): SessionView {
  const i = findTool(view, toolCallId);
  if (i < 0) return view;
  const messages = [...view.messages];
  messages[i] = change(messages[i] as ToolMessage);
  return { ...view, messages };
}

function addToolCall(view: SessionView, p: Of<"tool/call-requested">): SessionView {
  if (findTool(view, p.toolCallId) >= 0) return view;
  if (view.turnId !== p.turnId) return view;
  const message: ToolMessage = {
    kind: "tool",
    id: p.toolCallId,
    turnId: p.turnId,
    toolName: p.toolName,
    input: p.input,
    status: p.needsApproval ? "awaiting_approval" : "running",
    result: null,
    resultNotLoaded: null,
    reason: null,
  };
  return { ...view, messages: [...view.messages, message] };
}

function requestApproval(view: SessionView, p: Of<"tool/approval-requested">): SessionView {
  if (view.turnId === null) return view;
  const pending = view.pendingApprovals.filter((a) => a.toolCallId !== p.toolCallId);
  pending.push({ toolCallId: p.toolCallId, toolName: p.toolName, args: p.args as JsonValue });
  const updated = updateTool(view, p.toolCallId, (m) => ({ ...m, status: "awaiting_approval" }));
  return { ...updated, pendingApprovals: pending, status: "awaiting_approval" };
}

function decide(view: SessionView, p: Of<"tool/approval-decided">): SessionView {
  const pendingApprovals = view.pendingApprovals.filter((a) => a.toolCallId !== p.toolCallId);
  const status = view.turnId !== null && pendingApprovals.length === 0 ? "running" : view.status;
  const updated = updateTool(view, p.toolCallId, (m) =>
    m.status === "awaiting_approval"
      ? { ...m, status: p.approved ? "approved" : "denied", reason: p.reason }
      : m,
  );
  return { ...updated, pendingApprovals, status };
}

/** Ends the running turn: whatever still streams or waits is closed with the turn. */
function endTurn(view: SessionView, status: SessionStatus): SessionView {
  const closing = status === "idle" ? "completed" : status === "failed" ? "failed" : "cancelled";
  const messages = view.messages.map((m): ViewMessage => {
    if (m.kind === "assistant" && m.status === "streaming") {
      return { ...m, status: closing === "completed" ? "cancelled" : closing };
    }
    if (m.kind === "tool" && ["running", "awaiting_approval", "approved"].includes(m.status)) {
      return { ...m, status: "cancelled" };
    }
    if (m.kind === "user" && m.status === "queued" && status === "deleted") {
      return { ...m, status: "dropped" };
    }
    return m;
  });
  return {
    ...view,
    messages,
    status,
    turnId: null,
    cancelling: false,
    pendingApprovals: [],
  };
}
