/**
 * The agent's pure reducer and its obligations: each cause leads to exactly one event, keyed
 * by the offset of the event that caused it, and stale or repeated events change nothing.
 */
import { describe, expect, it } from "vitest";
import { type AgentState, initialAgentState, reduceAgent } from "../../src/sessions/conversation";
import type { SessionEventPayload, SessionEventType } from "../../src/sessions/events";
import { type Obligation, obligations, type ToolCatalog } from "../../src/sessions/obligations";
import { initialSummary, reduceSummary, type SessionEvent } from "../../src/sessions/summary";

const tools: ToolCatalog = {
  spec: (name) =>
    name === "echo" || name === "notes_write" ? { name, description: name, inputSchema: {} } : null,
  needsApproval: (name) => name === "notes_write",
};

let offset = 0;
function ev<T extends SessionEventType>(type: T, payload: SessionEventPayload<T>): SessionEvent {
  offset += 1;
  return { offset, type, payload, createdAt: new Date(0).toISOString() } as SessionEvent;
}

/** The event an obligation becomes once the agent has appended it (at the next offset). */
function appended<T extends SessionEventType>(obligation: Obligation<T>): SessionEvent {
  return ev(obligation.type, obligation.payload);
}

function run(...events: SessionEvent[]): AgentState {
  return events.reduce(reduceAgent, initialAgentState);
}

const created = () =>
  ev("session/created", {
    title: "t",
    model: "scripted",
    system: "be brief",
    tools: ["echo", "notes_write"],
  });

/** Offsets 1-4: session created, input "hi", turn-2 started, model request `requestId` sent. */
function turnWaitingForModel(requestId: string): AgentState {
  return run(
    created(),
    ev("session/input-added", { messageId: "m1", content: "hi" }),
    ev("turn/started", { turnId: "turn-2", messageId: "m1", content: "hi" }),
    ev("model/request-requested", {
      requestId,
      turnId: "turn-2",
      model: "scripted",
      system: "",
      messages: [],
      tools: [],
    }),
  );
}

describe("obligations", () => {
  it("owes nothing before the session exists or while idle", () => {
    offset = 0;
    expect(obligations(initialAgentState, tools)).toEqual([]);
    expect(obligations(run(created()), tools)).toEqual([]);
  });

  it("starts a turn and requests the model for the first queued input, keyed by that input", () => {
    offset = 0;
    const state = run(created(), ev("session/input-added", { messageId: "m1", content: "hi" }));
    const owed = obligations(state, tools);
    expect(owed.map((o) => [o.type, o.key, o.causeOffset])).toEqual([
      ["turn/started", "start-turn", 2],
      ["model/request-requested", "request-model", 2],
    ]);
    // The request references the transcript (through the input this turn adds), never embeds it.
    expect(owed[0]!.payload).toEqual({ turnId: "turn-2", messageId: "m1", inputOffset: 2 });
    expect(owed[1]!.payload).toEqual({
      requestId: "turn-2-req",
      turnId: "turn-2",
      model: "scripted",
      messageCount: 1,
    });
  });

  it("walks a turn with a tool call to its completion, one obligation per cause", () => {
    offset = 0;
    let state = run(
      created(),
      ev("session/input-added", { messageId: "m1", content: "call echo {}" }),
    );
    const [started, requested] = obligations(state, tools);
    expect([started?.type, requested?.type]).toEqual(["turn/started", "model/request-requested"]);
    state = reduceAgent(state, appended(started!));
    state = reduceAgent(state, appended(requested!));
    expect(obligations(state, tools)).toEqual([]); // waiting for the model
    const toolCall = { toolCallId: "c1", toolName: "echo", input: '{"text":"x"}' };
    state = reduceAgent(
      state,
      ev("model/request-completed", {
        requestId: "turn-2-req",
        text: "",
        toolCalls: [toolCall],
        finishReason: "tool-calls",
      }),
    );
    const [callRequest] = obligations(state, tools);
    expect(callRequest).toMatchObject({
      type: "tool/call-requested",
      key: "request-tool-c1",
      causeOffset: 5,
      payload: { needsApproval: false },
    });
    state = reduceAgent(state, appended(callRequest!));
    expect(obligations(state, tools)).toEqual([]); // waiting for the tool
    state = reduceAgent(
      state,
      ev("tool/call-completed", {
        toolCallId: "c1",
        toolName: "echo",
        result: { text: "x" },
        isError: false,
      }),
    );
    const [next] = obligations(state, tools);
    expect(next).toMatchObject({
      type: "model/request-requested",
      key: "request-model",
      causeOffset: 7,
      payload: { requestId: "req-7" },
    });
    state = reduceAgent(state, appended(next!));
    state = reduceAgent(
      state,
      ev("model/request-completed", {
        requestId: "req-7",
        text: "done",
        toolCalls: [],
        finishReason: "stop",
      }),
    );
    expect(obligations(state, tools)).toEqual([
      {
        type: "turn/completed",
        payload: { turnId: "turn-2" },
        key: "complete-turn",
        causeOffset: 9,
      },
    ]);
    state = reduceAgent(state, ev("turn/completed", { turnId: "turn-2", text: "done" }));
    expect(state.turn).toBeNull();
    expect(state.summary.status).toBe("idle");
    expect(state.messageCount).toBe(4);
  });

  it("discards a completion for a request that is no longer current", () => {
    offset = 0;
    let state = turnWaitingForModel("turn-2-req");
    state = reduceAgent(state, ev("session/cancel-requested", { reason: "stop" }));
    expect(obligations(state, tools)).toEqual([
      {
        type: "turn/cancelled",
        payload: { turnId: "turn-2", reason: "stop" },
        key: "cancel-turn",
        causeOffset: 5,
      },
    ]);
    state = reduceAgent(state, ev("turn/cancelled", { turnId: "turn-2", reason: "stop" }));
    const late = reduceAgent(
      state,
      ev("model/request-completed", {
        requestId: "turn-2-req",
        text: "late",
        toolCalls: [],
        finishReason: "stop",
      }),
    );
    expect(late.messageCount).toBe(state.messageCount);
    expect(late.summary.status).toBe("cancelled");
  });

  it("answers queued inputs one turn after the other", () => {
    offset = 0;
    let state = run(
      created(),
      ev("session/input-added", { messageId: "m1", content: "one" }),
      ev("session/input-added", { messageId: "m2", content: "two" }),
    );
    state = reduceAgent(
      state,
      ev("turn/started", { turnId: "turn-2", messageId: "m1", content: "one" }),
    );
    expect(state.queue.map((q) => q.messageId)).toEqual(["m2"]);
    expect(obligations(state, tools).map((o) => o.type)).toEqual(["model/request-requested"]);
    state = reduceAgent(state, ev("turn/completed", { turnId: "turn-2", text: "" }));
    expect(obligations(state, tools)[0]).toMatchObject({ type: "turn/started", causeOffset: 3 });
  });

  it("turns a failed model request into one session failure", () => {
    offset = 0;
    let state = turnWaitingForModel("r");
    state = reduceAgent(
      state,
      ev("model/request-failed", { requestId: "r", error: "503", status: 503, attempts: 4 }),
    );
    expect(obligations(state, tools)).toEqual([
      {
        type: "session/failed",
        payload: { error: "503", turnId: "turn-2" },
        key: "fail-session",
        causeOffset: 5,
      },
    ]);
  });
});

describe("summary", () => {
  it("follows idle → running → awaiting_approval → running → idle", () => {
    offset = 0;
    const steps: [SessionEvent, string][] = [
      [created(), "idle"],
      [ev("turn/started", { turnId: "t", messageId: "m", content: "x" }), "running"],
      [
        ev("tool/approval-requested", { toolCallId: "c", toolName: "notes_write", args: {} }),
        "awaiting_approval",
      ],
      [ev("tool/approval-decided", { toolCallId: "c", approved: true, reason: null }), "running"],
      [ev("turn/completed", { turnId: "t", text: "" }), "idle"],
    ];
    let summary = initialSummary;
    for (const [event, status] of steps) {
      summary = reduceSummary(summary, event);
      expect(summary.status).toBe(status);
    }
    expect(summary.pendingApprovals).toEqual([]);
  });

  it("stays deleted", () => {
    offset = 0;
    const deleted = reduceSummary(
      reduceSummary(initialSummary, created()),
      ev("session/deleted", {}),
    );
    expect(
      reduceSummary(deleted, ev("turn/started", { turnId: "t", messageId: "m", content: "" }))
        .status,
    ).toBe("deleted");
  });
});
