/**
 * Pure pieces of issue 9: where compaction cuts the transcript, how content is chunked into
 * rows, what the compaction prompt and the scripted summary look like, and how an agent state
 * of the old shape is upgraded.
 */
import { describe, expect, it } from "vitest";
import { compactionInput, planCompaction, systemWithSummary } from "../../src/sessions/context";
import { agentStateSchema, upgradeAgentState } from "../../src/sessions/conversation";
import {
  compactionSummary,
  SCRIPTED_SUMMARY_MAX_CHARS,
} from "../../src/sessions/models/scripted-plan";
import { chunkText } from "../../src/sessions/transcript";
import { platformFake } from "../support/platform-fakes";

const sizes = (...list: [string, number][]) =>
  list.map(([role, bytes], index) => ({ index, role, bytes }));

describe("planCompaction", () => {
  it("does nothing while the prompt fits the budget", () => {
    expect(
      planCompaction({ budget: 1000, fixedBytes: 100, from: 0, sizes: sizes(["user", 900]) }),
    ).toBeNull();
    expect(
      planCompaction({
        budget: 1000,
        fixedBytes: 0,
        from: 0,
        sizes: sizes(["user", 400], ["assistant", 600]),
      }),
    ).toBeNull();
  });

  it("keeps the newest messages within half the budget and compacts the rest", () => {
    const plan = planCompaction({
      budget: 1000,
      fixedBytes: 0,
      from: 0,
      sizes: sizes(
        ["user", 300],
        ["assistant", 300],
        ["user", 200],
        ["assistant", 200],
        ["user", 100],
      ),
    });
    // 100 + 200 + 200 = 500 <= 500 are kept: messages 2..4.
    expect(plan).toBe(2);
  });

  it("counts from the end of the previous summary", () => {
    const plan = planCompaction({
      budget: 1000,
      fixedBytes: 200,
      from: 10,
      sizes: sizes(["user", 400], ["assistant", 400], ["user", 100]),
    });
    expect(plan).toBe(11);
  });

  it("always keeps the last message, even when it alone is over half the budget", () => {
    const plan = planCompaction({
      budget: 1000,
      fixedBytes: 0,
      from: 0,
      sizes: sizes(["user", 600], ["assistant", 900]),
    });
    expect(plan).toBe(1);
  });

  it("has nothing to compact when only the last message is left", () => {
    expect(
      planCompaction({ budget: 100, fixedBytes: 0, from: 4, sizes: sizes(["user", 5000]) }),
    ).toBeNull();
  });

  it("never starts a window on a tool result whose call would be summarised away", () => {
    const plan = planCompaction({
      budget: 1000,
      fixedBytes: 0,
      from: 0,
      sizes: sizes(["user", 600], ["assistant", 100], ["tool", 200], ["tool", 200]),
    });
    // Half the budget keeps the two tool results; the window moves back to their call.
    expect(plan).toBe(1);
  });
});

describe("chunkText", () => {
  it("keeps short text in one piece and splits long text into bounded pieces", () => {
    expect(chunkText("hello", 10)).toEqual(["hello"]);
    const pieces = chunkText("abcdefghijklmnopqrstuvw", 10);
    expect(pieces).toEqual(["abcdefghij", "klmnopqrst", "uvw"]);
    expect(pieces.join("")).toBe("abcdefghijklmnopqrstuvw");
  });

  it("never splits a surrogate pair", () => {
    const text = `${"a".repeat(9)}😀${"b".repeat(9)}`;
    const pieces = chunkText(text, 10);
    expect(pieces.join("")).toBe(text);
    for (const piece of pieces) {
      const last = piece.charCodeAt(piece.length - 1);
      expect(last >= 0xd800 && last <= 0xdbff).toBe(false);
    }
    expect(pieces[0]).toBe("a".repeat(9));
  });
});

describe("compaction prompt and scripted summary", () => {
  const messages = [
    { role: "user" as const, content: "please remember the number forty two" },
    {
      role: "assistant" as const,
      content: "noted",
      toolCalls: [{ toolCallId: "c1", toolName: "notes_write", input: '{"k":1}' }],
    },
    {
      role: "tool" as const,
      toolCallId: "c1",
      toolName: "notes_write",
      result: { saved: true },
      isError: false,
    },
  ];

  it("renders the covered messages, after the previous summary", () => {
    expect(compactionInput("earlier things", messages)).toBe(
      [
        "Previous summary: earlier things",
        "",
        "[user] please remember the number forty two",
        '[assistant] noted (calls notes_write {"k":1})',
        '[tool notes_write] {"saved":true}',
      ].join("\n"),
    );
  });

  it("summarises deterministically from the covered messages, within a cap", () => {
    expect(compactionSummary(compactionInput(null, messages))).toBe(
      'Summary of 3 messages: [user] please remember the number forty | [assistant] noted (calls notes_write {"k":1}) | [tool notes_write] {"saved":true}',
    );
    const many = Array.from({ length: 500 }, (_, i) => ({
      role: "user" as const,
      content: `message ${i} with words`,
    }));
    const long = compactionSummary(compactionInput(null, many));
    expect(long.startsWith("Summary of 500 messages: [user] message 0 with words |")).toBe(true);
    expect(long.length).toBe(SCRIPTED_SUMMARY_MAX_CHARS);
  });

  it("puts the summary into the system prompt", () => {
    expect(systemWithSummary("be brief", null)).toBe("be brief");
    expect(systemWithSummary("be brief", "S")).toBe(
      "be brief\n\nSummary of the conversation so far:\nS",
    );
    expect(systemWithSummary("", "S")).toBe("Summary of the conversation so far:\nS");
  });
});

describe("upgradeAgentState", () => {
  it("leaves a current state alone", () => {
    expect(upgradeAgentState(agentStateSchema.parse({}))).toBeNull();
  });

  it("moves messages and queued content out of an old state", () => {
    const old = {
      summary: { status: "running", turnId: "turn-9" },
      config: { model: "scripted", system: "", tools: [] },
      messages: [
        { role: "user", content: "a" },
        { role: "assistant", content: "b", toolCalls: [] },
      ],
      queue: [{ messageId: "m2", content: "queued text", offset: 12 }],
      turn: {
        turnId: "turn-9",
        requestId: null,
        readyAt: null,
        calls: [],
        completion: { at: 11, text: "b" },
        failure: null,
        cancel: null,
      },
    };
    const upgrade = upgradeAgentState(old)!;
    const state = agentStateSchema.parse(upgrade.state);
    expect(state.messageCount).toBe(2);
    expect(state.queue).toEqual([{ messageId: "m2", offset: 12 }]);
    expect(state.turn?.completion).toEqual({ at: 11 });
    expect(JSON.stringify(upgrade.state)).not.toContain("queued text");
    const writes: unknown[][] = [];
    upgrade.write({
      name: (local) => `t_${local}`,
      exec: <T extends Record<string, SqlStorageValue>>(query: string, ...bindings: unknown[]) => {
        writes.push([query.split(" ").slice(0, 3).join(" "), ...bindings]);
        return platformFake<SqlStorageCursor<T>>({
          one: () => ({ n: 1 }),
          toArray: () => [{ text: "" }],
        });
      },
    });
    const inserted = writes.filter((w) => String(w[0]).startsWith("INSERT INTO t_texts"));
    expect(inserted.map((w) => w.slice(1))).toEqual([
      ["m:000000000000", 0, "a"],
      ["m:000000000001", 0, "b"],
      ["i:12", 0, "queued text"],
    ]);
  });
});
