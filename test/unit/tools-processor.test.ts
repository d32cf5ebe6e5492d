/** The tool processor's state keyed by model-chosen ids (src/sessions/processors/tools.ts). */
import { describe, expect, it } from "vitest";
import type { StateOf } from "../../src/processors/contract";
import { toolsContract } from "../../src/sessions/contracts";
import { sessionEvents } from "../../src/sessions/events";
import { ToolProcessor } from "../../src/sessions/processors/tools";
import { builtinTools } from "../../src/sessions/tools/builtin";
import { platformFake } from "../support/platform-fakes";

describe("processor state keyed by model-chosen ids", () => {
  const tools = new ToolProcessor(builtinTools, {
    storage: platformFake<DurableObjectStorage>({
      sql: platformFake<SqlStorage>({ exec: () => undefined }),
    }),
    sessionId: () => "s",
  });
  // Events as the host hands them to reduce (already parsed): written out, typed by the contract.
  const createdAt = "2026-01-01T00:00:00.000Z";

  it.each(["constructor", "toString", "hasOwnProperty", "valueOf"])(
    "a tool call with id %s is tracked like any other",
    (toolCallId) => {
      let state = toolsContract.initialState as StateOf<typeof toolsContract>;
      state = tools.reduce({
        state,
        event: {
          offset: 1,
          type: "tool/call-requested",
          payload: {
            toolCallId,
            turnId: "t",
            toolName: "notes_write",
            input: "{}",
            needsApproval: true,
          },
          createdAt,
        },
      });
      state = tools.reduce({
        state,
        event: {
          offset: 2,
          type: "tool/approval-requested",
          payload: { toolCallId, toolName: "notes_write", args: {} },
          createdAt,
        },
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
      event: {
        offset: 1,
        type: "tool/approval-decided",
        payload: { toolCallId: "constructor", approved: true, reason: null },
        createdAt,
      },
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
