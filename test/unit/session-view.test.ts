/**
 * The client's pure reducer from session events to a SessionView: streaming text, retries,
 * cancels, approvals, duplicates and replays.
 */
import { describe, expect, it } from "vitest";
import {
  initialSessionView,
  reduceSessionEvents,
  reduceSessionView,
  type SessionView,
  streamingMessage,
} from "../../src/client/view";
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

const view = (events: SessionEvent[]) => reduceSessionEvents(initialSessionView, events);

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
    expect(reduceSessionView(v, first)).toBe(v); // replayed event: unchanged
    expect(reduceSessionEvents(v, l.events)).toBe(v); // whole replay: unchanged
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
      v = reduceSessionView(v, event);
      summary = reduceSummary(summary, event);
      expect([event.type, v.status, v.pendingApprovals]).toEqual([
        event.type,
        summary.status,
        summary.pendingApprovals,
      ]);
    }
  });
});
