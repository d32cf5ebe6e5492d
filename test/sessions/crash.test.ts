/**
 * Crash safety of agent sessions: the SessionAgent is evicted or aborted at awkward moments
 * and every turn still completes once, with no duplicate events and no tool run twice.
 * (This project runs the scripted model with a 25 ms per-word delay.)
 */

import {
  abortAllDurableObjects,
  evictDurableObject,
  runDurableObjectAlarm,
  runInDurableObject,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { StreamDurableObject } from "../../src/streams/stream-do";
import { rpcClient } from "../support/rpc";
import {
  createSession,
  duplicateKeys,
  type getSession,
  post,
  sendMessage,
  sessionAgent,
  sessionEvents,
  sessionRpc,
  waitForSession,
} from "../support/session-api";
import { waitFor } from "../support/wait";

// 80 words at 25 ms each: about two seconds of streaming, plenty of time to crash mid-reply.
const LONG = Array.from({ length: 80 }, (_, i) => `word${i}`).join(" ");

async function deltasSoFar(id: string): Promise<number> {
  return (await sessionEvents(id)).filter((e) => e.type === "model/delta-produced").length;
}

function assistantMessages(view: Awaited<ReturnType<typeof getSession>>) {
  return view.live.messages.filter((m) => m.role === "assistant");
}

describe("crash safety", () => {
  it("finishes a turn once after the SessionAgent is evicted mid-reply", async () => {
    const id = await createSession();
    await sendMessage(id, LONG);
    await waitFor(async () => (await deltasSoFar(id)) >= 3);
    await evictDurableObject(sessionAgent(id));
    const done = await waitForSession(
      id,
      (s) => s.live.status === "idle" && assistantMessages(s).length === 1,
    );
    expect(assistantMessages(done)[0]!.content).toBe(`You said: ${LONG}`);
    const events = await sessionEvents(id);
    expect(duplicateKeys(events)).toEqual([]);
    expect(events.filter((e) => e.type === "model/request-completed")).toHaveLength(1);
    expect(events.filter((e) => e.type === "turn/completed")).toHaveLength(1);
  });

  it("finishes a turn once after every Durable Object is aborted mid-reply", async () => {
    const id = await createSession();
    await sendMessage(id, LONG);
    await waitFor(async () => (await deltasSoFar(id)) >= 3);
    await abortAllDurableObjects();
    // The watchdog alarm resumes the request; run it now instead of waiting for it.
    await runDurableObjectAlarm(sessionAgent(id));
    const done = await waitForSession(
      id,
      (s) => s.live.status === "idle" && assistantMessages(s).length === 1,
    );
    expect(assistantMessages(done)).toHaveLength(1);
    const events = await sessionEvents(id);
    expect(duplicateKeys(events)).toEqual([]);
    expect(events.filter((e) => e.type === "model/request-completed")).toHaveLength(1);
    const attempts = events
      .filter((e) => e.type === "model/request-started")
      .map((e) => (e.payload as { attempt: number }).attempt);
    expect(attempts.at(-1)).toBeGreaterThanOrEqual(2);
  });

  it("runs an approved tool exactly once when aborted while awaiting approval", async () => {
    const id = await createSession();
    await sendMessage(id, 'call notes_write {"key":"k1","text":"written once"}');
    const waiting = await waitForSession(id, (s) => s.status === "awaiting_approval");
    const callId = waiting.live.pendingApprovals[0]!.toolCallId;
    await abortAllDurableObjects();
    const decided = await post(`/v1/sessions/${id}/tool-calls/${callId}/decision`, {
      approved: true,
    });
    expect(decided.status).toBe(200);
    await decided.body?.cancel();
    await abortAllDurableObjects();
    await runDurableObjectAlarm(sessionAgent(id));
    const done = await waitForSession(
      id,
      (s) => s.live.status === "idle" && assistantMessages(s).length === 2,
    );
    expect(assistantMessages(done)[1]!.content).toContain('"saved":true');
    const events = await sessionEvents(id);
    expect(duplicateKeys(events)).toEqual([]);
    expect(events.filter((e) => e.type === "tool/call-completed")).toHaveLength(1);
    const executions = await runInDurableObject(sessionAgent(id), (_instance, state) => ({
      runs: state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM tool_executions").one()
        .n,
      note: state.storage.sql
        .exec<{ text: string }>("SELECT text FROM notes WHERE key = 'k1'")
        .one().text,
    }));
    expect(executions).toEqual({ runs: 1, note: "written once" });
  });

  it("starts a turn for input appended before the processors subscribed", async () => {
    // The session stream already holds a message when the SessionAgent first subscribes.
    const id = "01JZZZZZZZZZZZZZZZZZZZZZZZ";
    const name = `default:/sessions/${id}`;
    const stream = rpcClient(
      env.STREAMS.get(env.STREAMS.idFromName(name)) as unknown as Pick<
        StreamDurableObject,
        "create" | "appendBatch"
      >,
    );
    await stream.create(name, `/sessions/${id}`);
    await stream.appendBatch([
      { type: "session/input-added", payload: { messageId: "early", content: "are you there" } },
    ]);
    await sessionRpc(id).create({
      tenant: "default",
      sessionId: id,
      title: "",
      model: "scripted",
      system: "",
      tools: ["echo"],
    });
    const done = await waitForSession(
      id,
      (s) => s.live.status === "idle" && assistantMessages(s).length === 1,
    );
    expect(assistantMessages(done)[0]!.content).toBe("You said: are you there");
  });

  it("records a model that keeps failing as a failed session", async () => {
    const id = await createSession();
    await sendMessage(id, "fail 503 always");
    const failed = await waitForSession(
      id,
      (s) => s.status === "failed" && s.live.status === "failed",
    );
    expect(failed.lastError).toContain("503");
    const events = await sessionEvents(id);
    const failure = events.find((e) => e.type === "model/request-failed");
    expect(failure?.payload).toMatchObject({ status: 503, attempts: 4 });
    expect(events.filter((e) => e.type === "session/failed")).toHaveLength(1);
    expect(duplicateKeys(events)).toEqual([]);
  });

  it("keeps the first error when cleanup fails too", async () => {
    const id = await createSession();
    await sendMessage(id, "fail 400 always cleanup");
    const failed = await waitForSession(id, (s) => s.live.status === "failed");
    expect(failed.live.lastError).toContain("400");
    expect(failed.live.lastError).not.toContain("cleanup");
  });
});
