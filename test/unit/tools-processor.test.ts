/** The tool processor's state keyed by model-chosen ids (src/sessions/processors/tools.ts). */
import { describe, expect, it } from "vitest";
import type { StateOf } from "../../src/processors/contract";
import { toolsContract } from "../../src/sessions/contracts";
import { sessionEvents } from "../../src/sessions/events";
import { ToolProcessor } from "../../src/sessions/processors/tools";
import { builtinTools } from "../../src/sessions/tools/builtin";

describe("processor state keyed by model-chosen ids", () => {
  const tools = new ToolProcessor(builtinTools, {
    storage: { sql: { exec: () => undefined } } as unknown as DurableObjectStorage,
    sessionId: () => "s",
  });
  const ev = (offset: number, type: string, payload: unknown) =>
    ({ offset, type, payload, createdAt: "2026-01-01T00:00:00.000Z" }) as never;

  it.each(["constructor", "toString", "hasOwnProperty", "valueOf"])(
    "a tool call with id %s is tracked like any other",
    (toolCallId) => {
      let state = toolsContract.initialState as StateOf<typeof toolsContract>;
      state = tools.reduce({
        state,
        event: ev(1, "tool/call-requested", {
          toolCallId,
          turnId: "t",
          toolName: "notes_write",
          input: "{}",
          needsApproval: true,
        }),
      });
      state = tools.reduce({
        state,
        event: ev(2, "tool/approval-requested", { toolCallId, toolName: "notes_write", args: {} }),
      });
      expect(Object.hasOwn(state.calls, toolCallId)).toBe(true);
      expect(state.calls[toolCallId]).toMatchObject({ status: "awaiting", causeAt: 1 });
      expect(Object.getPrototypeOf(state.calls)).toBe(Object.prototype);
      expect(toolsContract.state.parse(state).calls[toolCallId]?.status).toBe("awaiting");
    },
  );

  it("an approval for an id no call has does not invent one", () => {
    const state = tools.reduce({
      state: toolsContract.initialState as StateOf<typeof toolsContract>,
      event: ev(1, "tool/approval-decided", {
        toolCallId: "constructor",
        approved: true,
        reason: null,
      }),
    });
    expect(Object.keys(state.calls)).toEqual([]);
  });

  it("__proto__ is refused as an id by the event schemas", () => {
    expect(
      sessionEvents["tool/approval-decided"].safeParse({
        toolCallId: "__proto__",
        approved: true,
        reason: null,
      }).success,
    ).toBe(false);
  });
});
