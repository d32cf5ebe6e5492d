/**
 * The client's pure reducer from session events to a SessionView: streaming text, retries,
 * cancels, approvals, duplicates and replays.
 */
import { describe, expect, it } from "vitest";
import {
  initialSessionView,
  MAX_BUFFERED_CONTENTS,
  reduceSessionEvents,
  reduceSessionView,
  type SessionView,
  streamingMessage,
} from "../../src/client/view";
import { type ClientEvent, toClientEvent } from "../../src/sessions/client-view";
import { sha256Hex, splitText, utf8Bytes } from "../../src/sessions/content";
import type { SessionEventPayload, SessionEventType } from "../../src/sessions/events";
import { initialSummary, reduceSummary, type SessionEvent } from "../../src/sessions/summary";

function log() {
  let offset = 0;
  const events: SessionEvent[] = [];
  const ev = <T extends SessionEventType>(type: T, payload: SessionEventPayload<T>) => {
    offset += 1;
    const event = { offset, type, payload, createdAt: new Date(0).toISOString() } as SessionEvent;
    events.push(event);
    return event;
  };
  return { ev, events };
}

/** A stream event as the client view serves it (what the reducer receives). */
function client(event: SessionEvent): ClientEvent {
  const out = toClientEvent(event);
  if (out === null) throw new Error(`${event.type} is not in the client view`);
  return out;
}
const view = (events: SessionEvent[]) =>
  reduceSessionEvents(initialSessionView, events.map(client));

/** created, input "hi", turn started, request requested and started (attempt 1). */
function turn(l: ReturnType<typeof log>, requested = true) {
  l.ev("session/created", { title: "t", model: "scripted", system: "", tools: [] });
  l.ev("session/input-added", { messageId: "m1", content: "hi" });
  l.ev("turn/started", { turnId: "turn-2", messageId: "m1", content: "hi" });
  if (requested) {
    l.ev("model/request-requested", {
      requestId: "r1",
      turnId: "turn-2",
      model: "scripted",
      system: "",
      messages: [],
      tools: [],
    });
  }
  l.ev("model/request-started", { requestId: "r1", attempt: 1 });
}

const delta = (l: ReturnType<typeof log>, attempt: number, index: number, text: string) =>
  l.ev("model/delta-produced", { requestId: "r1", attempt, index, text });

describe("reduceSessionView", () => {
  it("streams a reply into one assistant message and completes it", () => {
    const l = log();
    turn(l);
    delta(l, 1, 0, "You ");
    delta(l, 1, 1, "said");
    const streaming = view(l.events);
    expect(streaming.status).toBe("running");
    expect(streamingMessage(streaming)).toMatchObject({ text: "You said", status: "streaming" });
    l.ev("model/request-completed", {
      requestId: "r1",
      text: "You said: hi",
      toolCalls: [],
      finishReason: "stop",
    });
    l.ev("turn/completed", { turnId: "turn-2", text: "You said: hi" });
    const done = view(l.events);
    expect(done.status).toBe("idle");
    expect(streamingMessage(done)).toBeNull();
    expect(done.messages.map((m) => [m.kind, "text" in m ? m.text : m.toolName, m.status])).toEqual(
      [
        ["user", "hi", "sent"],
        ["assistant", "You said: hi", "completed"],
      ],
    );
    expect(done.lastOffset).toBe(l.events.length);
  });

  it("does not need model/request-requested (a client view may omit it)", () => {
    const l = log();
    turn(l, false);
    delta(l, 1, 0, "abc");
    expect(streamingMessage(view(l.events))).toMatchObject({
      id: "r1",
      turnId: "turn-2",
      text: "abc",
    });
  });

  it("drops an earlier attempt's text when attempt n+1 starts, and its late deltas", () => {
    const l = log();
    turn(l);
    delta(l, 1, 0, "partial from attempt one");
    l.ev("model/request-started", { requestId: "r1", attempt: 2 });
    expect(streamingMessage(view(l.events))).toMatchObject({ text: "", attempt: 2 });
    delta(l, 2, 0, "second ");
    delta(l, 1, 1, "LATE"); // a late delta of attempt 1
    delta(l, 2, 1, "try");
    expect(streamingMessage(view(l.events))).toMatchObject({ text: "second try", attempt: 2 });
  });

  it("a delta of a new attempt replaces the text even without its request-started", () => {
    const l = log();
    turn(l);
    delta(l, 1, 0, "old");
    delta(l, 2, 0, "new");
    expect(streamingMessage(view(l.events))?.text).toBe("new");
  });

  it("ignores repeated deltas and events at or below lastOffset", () => {
    const l = log();
    turn(l);
    const first = delta(l, 1, 0, "a");
    delta(l, 1, 1, "b");
    l.ev("model/delta-produced", { requestId: "r1", attempt: 1, index: 1, text: "b" }); // same index
    const v = view(l.events);
    expect(streamingMessage(v)?.text).toBe("ab");
    expect(reduceSessionView(v, client(first))).toBe(v); // replayed event: unchanged
    expect(reduceSessionEvents(v, l.events.map(client))).toBe(v); // whole replay: unchanged
  });

  it("discards text that arrives after a cancel; the partial reply stays, marked cancelled", () => {
    const l = log();
    turn(l);
    delta(l, 1, 0, "before ");
    l.ev("session/input-added", { messageId: "m2", content: "queued one" });
    l.ev("session/cancel-requested", { reason: "stop" });
    delta(l, 1, 1, "STALE");
    l.ev("model/request-completed", {
      requestId: "r1",
      text: "before STALE",
      toolCalls: [],
      finishReason: "stop",
    });
    l.ev("turn/cancelled", { turnId: "turn-2", reason: "stop" });
    const v = view(l.events);
    expect(v.status).toBe("cancelled");
    expect(v.cancelling).toBe(false);
    expect(v.messages.map((m) => [m.kind, "text" in m ? m.text : m.toolName, m.status])).toEqual([
      ["user", "hi", "sent"],
      ["assistant", "before ", "cancelled"],
      ["user", "queued one", "dropped"],
    ]);
  });

  it("tracks a tool call through approval to its result", () => {
    const l = log();
    turn(l);
    l.ev("model/request-completed", {
      requestId: "r1",
      text: "",
      toolCalls: [{ toolCallId: "c1", toolName: "notes_write", input: '{"key":"k"}' }],
      finishReason: "tool-calls",
    });
    l.ev("tool/call-requested", {
      toolCallId: "c1",
      turnId: "turn-2",
      toolName: "notes_write",
      input: '{"key":"k"}',
      needsApproval: true,
    });
    l.ev("tool/approval-requested", {
      toolCallId: "c1",
      toolName: "notes_write",
      args: { key: "k" },
    });
    const waiting = view(l.events);
    expect(waiting.status).toBe("awaiting_approval");
    expect(waiting.pendingApprovals).toEqual([
      { toolCallId: "c1", toolName: "notes_write", args: { key: "k" } },
    ]);
    // A reply that only calls tools shows no empty assistant bubble.
    expect(waiting.messages.map((m) => m.kind)).toEqual(["user", "tool"]);
    l.ev("tool/approval-decided", { toolCallId: "c1", approved: true, reason: null });
    expect(view(l.events)).toMatchObject({ status: "running", pendingApprovals: [] });
    l.ev("tool/call-completed", {
      toolCallId: "c1",
      toolName: "notes_write",
      result: { ok: true },
      isError: false,
    });
    const done = view(l.events);
    expect(done.messages[1]).toMatchObject({
      kind: "tool",
      status: "completed",
      result: { ok: true },
    });
  });

  it("a denied call is shown denied; a failure sets status and last error", () => {
    const l = log();
    turn(l);
    l.ev("tool/call-requested", {
      toolCallId: "c1",
      turnId: "turn-2",
      toolName: "notes_write",
      input: "{}",
      needsApproval: true,
    });
    l.ev("tool/approval-requested", { toolCallId: "c1", toolName: "notes_write", args: {} });
    l.ev("tool/approval-decided", { toolCallId: "c1", approved: false, reason: "no" });
    expect(view(l.events).messages.find((m) => m.kind === "tool")).toMatchObject({
      status: "denied",
      reason: "no",
    });
    l.ev("model/request-started", { requestId: "r2", attempt: 1 });
    l.ev("model/request-failed", { requestId: "r2", error: "HTTP 503", status: 503, attempts: 4 });
    l.ev("session/failed", { error: "HTTP 503", turnId: "turn-2" });
    const v = view(l.events);
    expect(v).toMatchObject({ status: "failed", lastError: "HTTP 503", turnId: null });
    expect(v.messages.at(-1)).toMatchObject({
      kind: "assistant",
      status: "failed",
      error: "HTTP 503",
    });
  });

  it("agrees with the server's own status reducer on every prefix of a session", () => {
    const l = log();
    turn(l);
    l.ev("tool/call-requested", {
      toolCallId: "c1",
      turnId: "turn-2",
      toolName: "notes_write",
      input: "{}",
      needsApproval: true,
    });
    l.ev("tool/approval-requested", { toolCallId: "c1", toolName: "notes_write", args: {} });
    l.ev("tool/approval-decided", { toolCallId: "c1", approved: true, reason: null });
    l.ev("turn/completed", { turnId: "turn-2", text: "" });
    l.ev("session/input-added", { messageId: "m2", content: "again" });
    l.ev("turn/started", { turnId: "turn-9", messageId: "m2", content: "again" });
    l.ev("session/cancel-requested", { reason: null });
    l.ev("turn/cancelled", { turnId: "turn-9", reason: null });
    l.ev("session/deleted", {});
    let v: SessionView = initialSessionView;
    let summary = initialSummary;
    for (const event of l.events) {
      v = reduceSessionView(v, client(event));
      summary = reduceSummary(summary, event);
      expect([event.type, v.status, v.pendingApprovals]).toEqual([
        event.type,
        summary.status,
        summary.pendingApprovals,
      ]);
    }
  });
});

/** Appends `text` as chunk events of at most `max` stored bytes; returns its ContentRef. */
async function chunked(l: ReturnType<typeof log>, contentId: string, text: string, max = 16) {
  const offsets = splitText(text, max).map(
    (piece, index) => l.ev("content/chunk-added", { contentId, index, text: piece }).offset,
  );
  return {
    contentId,
    bytes: utf8Bytes(text),
    chunks: offsets.length,
    sha256: await sha256Hex(text),
    offsets,
  };
}

describe("reduceSessionView: chunked content", () => {
  const long = "A long message with ünïcödé and emoji 🙂 that does not fit one chunk.";

  it("assembles a chunked user message and drops the buffer", async () => {
    const l = log();
    l.ev("session/created", { title: "t", model: "scripted", system: "", tools: [] });
    const contentRef = await chunked(l, "input:m1", long);
    expect(contentRef.chunks).toBeGreaterThan(3);
    l.ev("session/input-added", { messageId: "m1", content: "", contentRef });
    const v = view(l.events);
    expect(v.messages).toEqual([
      expect.objectContaining({ kind: "user", id: "m1", text: long, notLoaded: null }),
    ]);
    expect(v.chunks.size).toBe(0);
  });

  it("assembles a chunked tool result (JSON) and a chunked reply", async () => {
    const l = log();
    turn(l);
    const reply = `${long} (reply)`;
    const textRef = await chunked(l, "reply:r1", reply);
    l.ev("model/request-completed", {
      requestId: "r1",
      text: "",
      textRef,
      toolCalls: [{ toolCallId: "c1", toolName: "echo", input: "{}" }],
      finishReason: "tool_calls",
    });
    l.ev("tool/call-requested", {
      toolCallId: "c1",
      turnId: "turn-2",
      toolName: "echo",
      input: "{}",
      needsApproval: false,
    });
    const result = { echoed: long, n: [1, 2, 3] };
    const resultRef = await chunked(l, "result:c1", JSON.stringify(result));
    l.ev("tool/call-completed", {
      toolCallId: "c1",
      toolName: "echo",
      result: null,
      resultRef,
      isError: false,
    });
    const v = view(l.events);
    expect(v.messages[1]).toMatchObject({ kind: "assistant", text: reply, status: "completed" });
    expect(v.messages[2]).toMatchObject({
      kind: "tool",
      status: "completed",
      result,
      resultNotLoaded: null,
    });
    expect(v.chunks.size).toBe(0);
  });

  it("marks content whose chunks it did not see as not loaded, with its size", async () => {
    const l = log();
    l.ev("session/created", { title: "t", model: "scripted", system: "", tools: [] });
    const contentRef = await chunked(l, "input:m1", long);
    l.ev("session/input-added", { messageId: "m1", content: "", contentRef });
    // A reader that started after the chunks (e.g. resumed at the input event).
    const v = view(l.events.filter((e) => e.type !== "content/chunk-added"));
    expect(v.messages[0]).toMatchObject({
      text: "",
      notLoaded: { reason: "missing", bytes: utf8Bytes(long) },
    });
    // Only some chunks seen: also missing.
    const partial = view(l.events.filter((e) => e.offset !== contentRef.offsets[1]));
    expect(partial.messages[0]).toMatchObject({ text: "", notLoaded: { reason: "missing" } });
  });

  it("refuses chunks that do not add up to their ref", async () => {
    const l = log();
    const contentRef = await chunked(l, "input:m1", long);
    l.ev("session/input-added", {
      messageId: "m1",
      content: "",
      contentRef: { ...contentRef, bytes: contentRef.bytes + 1 },
    });
    expect(view(l.events).messages[0]).toMatchObject({
      text: "",
      notLoaded: { reason: "invalid" },
    });
  });

  it("bounds the buffered bytes: orphans go first, content beyond the bound is too_large", () => {
    const piece = "a".repeat(512 * 1024);
    const l = log();
    const chunks = (contentId: string, n: number) =>
      Array.from({ length: n }, (_, index) =>
        l.ev("content/chunk-added", { contentId, index, text: piece }),
      );
    chunks("orphan", 60); // 30 MiB never referenced
    const fits = chunks("fits", 8); // 4 MiB: the orphan is evicted to make room
    l.ev("session/input-added", {
      messageId: "m1",
      content: "",
      contentRef: {
        contentId: "fits",
        bytes: 8 * piece.length,
        chunks: 8,
        sha256: "0".repeat(64),
        offsets: fits.map((e) => e.offset),
      },
    });
    const huge = chunks("huge", 65); // 32.5 MiB alone
    const mid = view(l.events);
    expect(mid.messages[0]).toMatchObject({ text: "a".repeat(8 * piece.length), notLoaded: null });
    expect([...mid.chunks.keys()]).toEqual(["huge"]);
    expect(mid.chunks.get("huge")).toMatchObject({ overflowed: true, bytes: 0 });
    l.ev("session/input-added", {
      messageId: "m2",
      content: "",
      contentRef: {
        contentId: "huge",
        bytes: 65 * piece.length,
        chunks: 65,
        sha256: "0".repeat(64),
        offsets: huge.map((e) => e.offset),
      },
    });
    const v = view(l.events);
    expect(v.messages[1]).toMatchObject({
      text: "",
      notLoaded: { reason: "too_large", bytes: 65 * piece.length },
    });
    expect(v.chunks.size).toBe(0);
  });

  it("bounds the number of buffered contents, keeping the newest", () => {
    const l = log();
    for (let i = 0; i < MAX_BUFFERED_CONTENTS + 10; i++)
      l.ev("content/chunk-added", { contentId: `c${i}`, index: 0, text: "x" });
    const v = view(l.events);
    expect(v.chunks.size).toBe(MAX_BUFFERED_CONTENTS);
    expect(v.chunks.has("c9")).toBe(false);
    expect(v.chunks.has(`c${MAX_BUFFERED_CONTENTS + 9}`)).toBe(true);
  });

  it("does not change an earlier view when reducing chunks (pure)", () => {
    const l = log();
    const first = l.ev("content/chunk-added", { contentId: "c", index: 0, text: "x" });
    const before = reduceSessionView(initialSessionView, client(first));
    const second = l.ev("content/chunk-added", { contentId: "c", index: 1, text: "y" });
    const after = reduceSessionView(before, client(second));
    expect(before.chunks.get("c")?.pieces).toHaveLength(1);
    expect(after.chunks.get("c")?.pieces).toHaveLength(2);
    expect(initialSessionView.chunks.size).toBe(0);
  });
});

describe("reduceSessionView: event shapes after issue 9", () => {
  // Newer events: turn/started names its input without embedding it, turn/completed has no
  // text.
  const started: SessionEventPayload<"turn/started"> = {
    turnId: "turn-2",
    messageId: "m1",
    inputOffset: 2,
  };
  const completed: SessionEventPayload<"turn/completed"> = { turnId: "turn-2" };

  it("takes the user message from its input and the reply from the completed request", () => {
    const l = log();
    l.ev("session/created", { title: "t", model: "scripted", system: "", tools: [] });
    l.ev("session/input-added", { messageId: "m1", content: "hi" });
    l.ev("turn/started", started);
    l.ev("model/request-requested", {
      requestId: "r1",
      turnId: "turn-2",
      model: "scripted",
      messageCount: 1,
      throughOffset: 3,
    });
    l.ev("model/request-completed", {
      requestId: "r1",
      text: "hello",
      toolCalls: [],
      finishReason: "stop",
    });
    l.ev("turn/completed", completed);
    const v = view(l.events);
    expect(v.status).toBe("idle");
    expect(v.messages).toEqual([
      expect.objectContaining({ kind: "user", text: "hi", status: "sent", turnId: "turn-2" }),
      expect.objectContaining({ kind: "assistant", text: "hello", status: "completed" }),
    ]);
  });

  it("marks a turn's input it did not see as not loaded rather than empty", () => {
    const l = log();
    l.ev("turn/started", started);
    const v = view(l.events);
    expect(v.messages).toEqual([
      expect.objectContaining({
        kind: "user",
        id: "m1",
        text: "",
        notLoaded: { reason: "missing", bytes: null },
      }),
    ]);
    // Older events embed it.
    const old = log();
    old.ev("turn/started", { turnId: "turn-2", messageId: "m1", content: "hi" });
    expect(view(old.events).messages[0]).toMatchObject({ text: "hi", notLoaded: null });
  });
});
