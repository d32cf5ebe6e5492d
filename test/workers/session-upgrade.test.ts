/**
 * Sessions stored before issue 9 keep working: an agent state that holds the conversation
 * (`messages`) and a tools state that holds every call are upgraded on first read (history
 * moved to rows, in one transaction), and old-format events (`turn/started` with its content,
 * `model/request-requested` with an embedded prompt) are still honoured.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { TranscriptPage } from "../../src/sessions/agent-rpc";
import { streamStub } from "../../src/streams/stub";
import { evictDurableObject, rpcClient } from "../support/rpc";
import {
  api,
  createSession,
  duplicateKeys,
  post,
  sessionAgent,
  sessionEvents,
  sessionRpc,
  settledSession,
} from "../support/session-api";

async function transcript(id: string) {
  const res = await api(`/v1/sessions/${id}/messages?limit=200`);
  expect(res.status).toBe(200);
  return ((await res.json()) as TranscriptPage).messages;
}

describe("stored data from before issue 9", () => {
  it("upgrades an agent state holding the conversation and a tools state holding every call", async () => {
    const id = await createSession();
    await sessionRpc(id).sendMessage("hello");
    await settledSession(id, 2);
    // Rewrite the stored states in the old shapes, as the previous version left them.
    await runInDurableObject(sessionAgent(id), (_instance, state) => {
      const sql = state.storage.sql;
      const agent = JSON.parse(
        sql
          .exec<{ state: string }>("SELECT state FROM processor_state WHERE processor = 'agent'")
          .one().state,
      ) as Record<string, unknown>;
      const { messageCount: _count, ...rest } = agent;
      const old = {
        ...rest,
        messages: [
          { role: "user", content: "codeword banana" },
          { role: "assistant", content: "You said: codeword banana", toolCalls: [] },
        ],
        queue: [],
      };
      sql.exec(
        "UPDATE processor_state SET state = ? WHERE processor = 'agent'",
        JSON.stringify(old),
      );
      sql.exec("DELETE FROM p_agent__messages");
      sql.exec("DELETE FROM p_agent__texts");
      const tools = {
        enabled: ["echo", "clock_now", "notes_write", "notes_read"],
        calls: {
          "old-call": {
            toolName: "notes_write",
            input: "{}",
            turnId: "turn-old",
            status: "done",
            causeAt: 1,
            decision: { approved: true, reason: null, at: 2 },
          },
        },
      };
      sql.exec(
        "UPDATE processor_state SET state = ? WHERE processor = 'tools'",
        JSON.stringify(tools),
      );
    });
    // Old rows come with a new version of the code: a fresh instance reads them.
    await evictDurableObject(sessionAgent(id));

    await sessionRpc(id).sendMessage("history");
    const view = await settledSession(id, 4);
    // The old history reached the model's prompt.
    expect(view.messages.at(-1)).toMatchObject({
      role: "assistant",
      content: 'History: 3 messages; summary: no; first: "codeword banana"',
    });
    expect((await transcript(id)).map((m) => ("content" in m ? m.content : ""))).toEqual([
      "codeword banana",
      "You said: codeword banana",
      "history",
      'History: 3 messages; summary: no; first: "codeword banana"',
    ]);
    // The old call's decision (read, and so upgraded, on first use) still answers: the same decision is idempotent, another is 409.
    const same = await post(`/v1/sessions/${id}/tool-calls/old-call/decision`, { approved: true });
    expect(same.status).toBe(200);
    await same.body?.cancel();
    const other = await post(`/v1/sessions/${id}/tool-calls/old-call/decision`, {
      approved: false,
    });
    expect(other.status).toBe(409);
    await other.body?.cancel();
    const stored = await runInDurableObject(sessionAgent(id), (_instance, state) =>
      state.storage.sql
        .exec<{ processor: string; state: string }>("SELECT processor, state FROM processor_state")
        .toArray(),
    );
    const agent = JSON.parse(stored.find((r) => r.processor === "agent")!.state);
    expect(agent).not.toHaveProperty("messages");
    expect(agent.messageCount).toBe(4);
    const tools = JSON.parse(stored.find((r) => r.processor === "tools")!.state);
    expect(tools.calls).toEqual({});
  });

  it("honours old-format turn and model request events that embed their content", async () => {
    const id = await createSession();
    const name = `default:/sessions/${id}`;
    const stream = rpcClient(streamStub(env, name));
    const input = (await stream.head()).lastOffset + 1;
    const turnId = `turn-${input}`;
    // What the previous version's agent appended for an input, with its idempotency keys.
    await stream.appendBatch(
      [
        { type: "session/input-added", payload: { messageId: "msg-old", content: "history" } },
        {
          type: "turn/started",
          payload: { turnId, messageId: "msg-old", content: "history" },
          idempotencyKey: `agent/start-turn@${input}`,
        },
        {
          type: "model/request-requested",
          payload: {
            requestId: `${turnId}-req`,
            turnId,
            model: "scripted",
            system: "",
            messages: [
              { role: "user", content: "old question" },
              { role: "assistant", content: "old answer", toolCalls: [] },
              { role: "user", content: "history" },
            ],
            tools: [],
          },
          idempotencyKey: `agent/request-model@${input}`,
        },
        // Appended as the previous version's agent processor did (processor idempotency keys).
      ],
      { asProcessor: true },
    );
    const view = await settledSession(id, 2);
    expect(view.messages).toEqual([
      { role: "user", content: "history" },
      {
        role: "assistant",
        content: 'History: 3 messages; summary: no; first: "old question"',
        toolCalls: [],
      },
    ]);
    const events = await sessionEvents(id);
    expect(duplicateKeys(events)).toEqual([]);
    expect(events.filter((e) => e.type === "turn/started")).toHaveLength(1);
    expect(events.filter((e) => e.type === "model/request-requested")).toHaveLength(1);
    expect(events.filter((e) => e.type === "turn/completed")).toHaveLength(1);
  });
});
