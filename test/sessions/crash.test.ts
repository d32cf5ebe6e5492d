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
import { streamStub } from "../../src/streams/stub";
import { rpcClient } from "../support/rpc";
import {
  createSession,
  duplicateKeys,
  getSession,
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

/**
 * Ends one Durable Object at once, like a crash: its in-memory state and background work
 * (a streaming reply) die with it. (`evictDurableObject` waits for background work to drain.)
 */
async function abortObject(stub: DurableObjectStub): Promise<void> {
  try {
    await runInDurableObject(stub, (_instance: unknown, state: DurableObjectState) => {
      state.abort("aborted by the test");
    });
  } catch {
    // The abort also ends this call.
  }
}

function assistantMessages(view: Awaited<ReturnType<typeof getSession>>) {
  return view.live.messages.filter((m) => m.role === "assistant");
}

/** The turn ends idle with one reply, written once: no key twice, one completion. */
async function finishedOnce(id: string) {
  const done = await waitForSession(
    id,
    (s) => s.live.status === "idle" && assistantMessages(s).length === 1,
  );
  const events = await sessionEvents(id);
  expect(duplicateKeys(events)).toEqual([]);
  expect(events.filter((e) => e.type === "model/request-completed")).toHaveLength(1);
  return { done, events };
}

describe("crash safety", () => {
  it("finishes a turn once when the SessionAgent is evicted gracefully mid-reply", async () => {
    const id = await createSession();
    await sendMessage(id, LONG);
    await waitFor(async () => (await deltasSoFar(id)) >= 3);
    // A graceful eviction lets background work (the streaming reply) drain first; the test
    // below kills the reply for real.
    await evictDurableObject(sessionAgent(id));
    const { done, events } = await finishedOnce(id);
    expect(assistantMessages(done)[0]!.content).toBe(`You said: ${LONG}`);
    expect(events.filter((e) => e.type === "turn/completed")).toHaveLength(1);
  });

  it("resumes a reply cut by a crash as soon as the SessionAgent is read, well within the watchdog", async () => {
    // The watchdog alarm (10 s) is only the safety net: the constructor itself resumes work
    // that died with the previous instance. No alarm is run by hand here, and nothing but a
    // read of the session touches the SessionAgent after the eviction.
    const id = await createSession();
    await sendMessage(id, LONG);
    await waitFor(async () => (await deltasSoFar(id)) >= 3);
    // evictDurableObject would wait for the reply (background work) to finish: abort instead.
    await abortObject(sessionAgent(id));
    const view = await getSession(id);
    expect(view.live.status).toBe("running");
    let started: number[] = [];
    const attemptsStarted = async () =>
      (await sessionEvents(id))
        .filter((e) => e.type === "model/request-started")
        .map((e) => (e.payload as { attempt: number }).attempt);
    // Polls the stream only (not the SessionAgent); 5 s is half the watchdog's 10 s.
    await waitFor(async () => {
      started = await attemptsStarted();
      return started.includes(2);
    }, 5_000).catch(() => {
      throw new Error(
        `no second attempt within 5 s of reading the evicted session (attempts started: ${started.join(", ")}): only the 10 s watchdog resumes the reply`,
      );
    });
    const { done } = await finishedOnce(id);
    expect(assistantMessages(done)[0]!.content).toBe(`You said: ${LONG}`);
    expect(await attemptsStarted()).toEqual([1, 2]);
  });

  it("finishes a turn once after every Durable Object is aborted mid-reply", async () => {
    const id = await createSession();
    await sendMessage(id, LONG);
    await waitFor(async () => (await deltasSoFar(id)) >= 3);
    await abortAllDurableObjects();
    // The watchdog alarm resumes the request; run it now instead of waiting for it.
    await runDurableObjectAlarm(sessionAgent(id));
    const { done, events } = await finishedOnce(id);
    expect(assistantMessages(done)).toHaveLength(1);
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
    const stream = rpcClient(streamStub(env, name));
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
