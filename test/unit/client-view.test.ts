/** The client view's allowlist and projections (src/sessions/client-view.ts), as pure functions. */
import { describe, expect, it } from "vitest";
import {
  CLIENT_EVENT_TYPES,
  clientEventSchema,
  toClientEvent,
  type ViewInput,
} from "../../src/sessions/client-view";
import { sessionEvents } from "../../src/sessions/events";

const at = "2026-12-01T00:00:00.000Z";
const ev = (offset: number, type: string | null, payload: unknown, extra = {}): ViewInput => ({
  offset,
  type,
  payload,
  createdAt: at,
  ...extra,
});

describe("toClientEvent", () => {
  it("drops the system prompt from session/created", () => {
    const out = toClientEvent(
      ev(1, "session/created", {
        title: "t",
        model: "scripted",
        system: "SECRET",
        tools: ["echo"],
      }),
    );
    expect(out).toEqual({
      offset: 1,
      type: "session/created",
      payload: { title: "t", model: "scripted", tools: ["echo"] },
      createdAt: at,
    });
  });

  it("keeps only the ids, model and message count of a model request", () => {
    const out = toClientEvent(
      ev(7, "model/request-requested", {
        requestId: "r1",
        turnId: "t1",
        model: "scripted",
        messageCount: 3,
        throughOffset: 6,
      }),
    );
    expect(out?.payload).toEqual({
      requestId: "r1",
      turnId: "t1",
      model: "scripted",
      messageCount: 3,
    });
  });

  it("shows turns by reference: turn/started names its input, turn/completed has no text", () => {
    const started = toClientEvent(
      ev(5, "turn/started", { turnId: "t1", messageId: "m1", inputOffset: 4 }),
    );
    expect(started?.payload).toEqual({ turnId: "t1", messageId: "m1", inputOffset: 4 });
    // Old-format events still parse: the embedded input stays (a client that started reading
    // after the input has nothing else to show), the reply's copy goes.
    const old = toClientEvent(
      ev(5, "turn/started", { turnId: "t1", messageId: "m1", content: "hi" }),
    );
    expect(old?.payload).toEqual({ turnId: "t1", messageId: "m1", content: "hi" });
    const done = toClientEvent(ev(9, "turn/completed", { turnId: "t1", text: "the reply" }));
    expect(done?.payload).toEqual({ turnId: "t1" });
  });

  it("keeps only the ids and model of an old-format model request", () => {
    const out = toClientEvent(
      ev(7, "model/request-requested", {
        requestId: "r1",
        turnId: "t1",
        model: "scripted",
        system: "SECRET",
        messages: [{ role: "user", content: "hi" }],
        tools: [{ name: "echo", description: "d", inputSchema: {} }],
      }),
    );
    expect(out?.payload).toEqual({ requestId: "r1", turnId: "t1", model: "scripted" });
  });

  it("passes UI events through with their offset, without metadata or idempotency keys", () => {
    const out = toClientEvent(
      ev(
        9,
        "model/delta-produced",
        { requestId: "r1", attempt: 2, index: 0, text: "Hel" },
        { metadata: { internal: true }, idempotencyKey: "model/delta@8" },
      ),
    );
    expect(out).toEqual({
      offset: 9,
      type: "model/delta-produced",
      payload: { requestId: "r1", attempt: 2, index: 0, text: "Hel" },
      createdAt: at,
    });
  });

  it("leaves out stream plumbing, unknown and untyped events, and invalid payloads", () => {
    const subscription = {
      subscriptionKey: "agent",
      callable: { kind: "durable-object", binding: "SESSIONS", name: "x", method: "deliver" },
    };
    expect(toClientEvent(ev(2, "stream/subscription-configured", subscription))).toBeNull();
    expect(toClientEvent(ev(3, "stream/subscriber-failed", {}))).toBeNull();
    expect(toClientEvent(ev(4, "billing/charged", { amount: 1 }))).toBeNull();
    expect(toClientEvent(ev(5, null, { anything: 1 }))).toBeNull();
    expect(toClientEvent(ev(6, "__proto__", {}))).toBeNull();
    expect(toClientEvent(ev(6, "constructor", {}))).toBeNull();
    expect(toClientEvent(ev(8, "turn/completed", { turnId: 5 }))).toBeNull();
  });

  it("strips fields a payload gains later until they are added to the view", () => {
    const out = toClientEvent(
      ev(10, "tool/approval-requested", {
        toolCallId: "c1",
        toolName: "notes_write",
        args: { key: "k" },
        internalPolicy: "p",
      }),
    );
    expect(out?.payload).toEqual({ toolCallId: "c1", toolName: "notes_write", args: { key: "k" } });
  });

  it("passes content chunks through (a UI assembles large messages and results from them)", () => {
    const chunk = { contentId: "input:m1", index: 0, text: "piece" };
    expect(toClientEvent(ev(12, "content/chunk-added", chunk))?.payload).toEqual(chunk);
    expect(
      toClientEvent(ev(13, "content/chunk-added", { contentId: "x", index: -1, text: "" })),
    ).toBeNull();
  });

  it("reads turn and request events of both the older and the newer shape", () => {
    // Older: turn/started embeds the input, turn/completed repeats the reply.
    expect(
      toClientEvent(ev(2, "turn/started", { turnId: "t1", messageId: "m1", content: "hi" }))
        ?.payload,
    ).toEqual({ turnId: "t1", messageId: "m1", content: "hi" });
    expect(
      toClientEvent(ev(9, "turn/completed", { turnId: "t1", text: "reply" }))?.payload,
    ).toEqual({ turnId: "t1" });
    // Newer: the input is named by offset, the reply is the request's, the prompt is not embedded.
    expect(
      toClientEvent(ev(3, "turn/started", { turnId: "t1", messageId: "m1", inputOffset: 2 }))
        ?.payload,
    ).toEqual({ turnId: "t1", messageId: "m1", inputOffset: 2 });
    expect(toClientEvent(ev(10, "turn/completed", { turnId: "t1" }))?.payload).toEqual({
      turnId: "t1",
    });
    expect(
      toClientEvent(
        ev(4, "model/request-requested", {
          requestId: "r1",
          turnId: "t1",
          model: "scripted",
          messageCount: 3,
          throughOffset: 3,
        }),
      )?.payload,
    ).toEqual({ requestId: "r1", turnId: "t1", model: "scripted", messageCount: 3 });
  });

  it("leaves out context compaction (the model's prompt, not the conversation)", () => {
    const compacted = { requestId: "r1", fromMessage: 0, throughMessage: 4, summary: "S" };
    expect(toClientEvent(ev(14, "context/compacted", compacted))).toBeNull();
    expect(toClientEvent(ev(15, "context/compaction-requested", compacted))).toBeNull();
  });

  it("covers session event types only, and its schema accepts what it produces", () => {
    for (const type of CLIENT_EVENT_TYPES) expect(Object.hasOwn(sessionEvents, type)).toBe(true);
    const produced = toClientEvent(ev(11, "turn/completed", { turnId: "t" }));
    expect(clientEventSchema.parse(produced)).toEqual(produced);
  });
});
