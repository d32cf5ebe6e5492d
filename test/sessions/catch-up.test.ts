/**
 * An RPC that must see what a session processor has consumed (a decision, judged against the
 * tools processor's state) waits for the processor's commit, not for a poll, and is told when
 * it cannot be met: a parked subscription answers 503 `unavailable` naming the processor and
 * where it is stuck (at once when the stream already parked it; as soon as it parks while the
 * call waits), never a judgment on stale state. An eviction while waiting ends the call with
 * an error, and the next call is answered from the recovered processor.
 */

import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { SessionAgent } from "../../src/sessions/session-agent";
import { streamAccess } from "../../src/sessions/stream-access";
import { evictDurableObject, runInDurableObject } from "../support/rpc";
import {
  createSession,
  post,
  sendMessage,
  sessionAgent,
  sessionEvents,
  waitForSession,
} from "../support/session-api";
import { pumpUntil } from "../support/streams";
import { waitFor } from "../support/wait";

const toolsKey = (id: string) => `tools@SESSIONS/default:${id}`;
const streamOf = (id: string) => streamAccess(env.STREAMS, `default:/sessions/${id}`);

async function awaitingApproval() {
  const id = await createSession();
  await sendMessage(id, 'call notes_write {"key":"k","text":"hello"}');
  const view = await waitForSession(
    id,
    (s) => s.status === "awaiting_approval" && s.live.pendingApprovals.length === 1,
  );
  return { id, callId: view.live.pendingApprovals[0]!.toolCallId };
}

/** Makes the tools processor fail every batch (an own property: lost when the object is evicted). */
async function breakTools(id: string) {
  await runInDurableObject(sessionAgent(id), (instance: SessionAgent) => {
    instance.tools.processBatch = async () => {
      throw new Error("tools processor cannot write (simulated)");
    };
  });
}

/** Cancels the turn: the agent emits `turn/cancelled`, which the (broken) tools processor consumes. */
async function cancelTurn(id: string) {
  const res = await post(`/v1/sessions/${id}/cancel`, { reason: "changed my mind" });
  expect(res.status).toBe(202);
  await res.body?.cancel();
  await waitForSession(id, (s) => s.live.status === "cancelled");
}

async function resume(id: string) {
  const res = await post(
    `/v1/subscriptions/resume?stream=${encodeURIComponent(`/sessions/${id}`)}&key=${encodeURIComponent(toolsKey(id))}`,
  );
  expect(res.status).toBe(200);
  await res.body?.cancel();
}

const decide = (id: string, callId: string) =>
  post(`/v1/sessions/${id}/tool-calls/${callId}/decision`, { approved: true });

async function errorOf(res: Response) {
  return ((await res.json()) as { error: { code: string; message: string } }).error;
}

const toolsParked = async (id: string) =>
  (await streamOf(id).listSubscriptions()).some(
    (s) => s.key === toolsKey(id) && s.status === "parked",
  );

describe("catching up before a decision", () => {
  it("answers 503 naming the parked tools processor instead of approving a cancelled call", async () => {
    const { id, callId } = await awaitingApproval();
    await breakTools(id);
    await cancelTurn(id);
    await pumpUntil(streamOf(id), () => toolsParked(id));

    const res = await decide(id, callId);
    expect(res.status).toBe(503);
    const error = await errorOf(res);
    expect(error.code).toBe("unavailable");
    expect(error.message).toMatch(/tools processor is parked at offset \d+ .*cannot write/);
    // Nothing was decided on the stale state.
    const types = (await sessionEvents(id)).map((e) => e.type);
    expect(types).not.toContain("tool/approval-decided");

    // Fixed (evicted: the simulated bug is gone) and resumed: the call was cancelled with its turn.
    await evictDurableObject(sessionAgent(id));
    await resume(id);
    await pumpUntil(streamOf(id), async () =>
      (await streamOf(id).listSubscriptions()).every((s) => s.status === "active" && s.lag === 0),
    );
    const after = await decide(id, callId);
    expect(after.status).toBe(409);
    expect((await errorOf(after)).message).toMatch(/not awaiting approval \(it is cancelled\)/);
  });

  it("a decision waiting for the tools processor is failed as soon as its subscription parks", async () => {
    const { id, callId } = await awaitingApproval();
    await breakTools(id);
    await cancelTurn(id);
    const pending = decide(id, callId);
    await pumpUntil(streamOf(id), () => toolsParked(id));
    const res = await pending;
    expect(res.status).toBe(503);
    expect((await errorOf(res)).message).toMatch(/tools processor is parked/);
    // The session list's row follows within the index's lag (index-mirror.ts).
    await waitForSession(id, (s) => s.status === "failed");
  });

  it("a decision waiting when the SessionAgent is evicted ends with an error; the next one is answered", async () => {
    const { id, callId } = await awaitingApproval();
    await breakTools(id);
    await cancelTurn(id);
    const pending = decide(id, callId);
    // Once the call waits for the tools processor, end the object (which drops the bug).
    await waitFor(() =>
      runInDurableObject(sessionAgent(id), (i: SessionAgent) => i.host.pendingWaits("tools") > 0),
    );
    await evictDurableObject(sessionAgent(id));
    const res = await pending;
    // Either the eviction cut the waiting call (an error, not a hang), or the wait ended first
    // with the visible 503; never a decision on stale state.
    expect([500, 503]).toContain(res.status);
    await res.body?.cancel();
    if (await toolsParked(id)) await resume(id);
    await pumpUntil(streamOf(id), async () =>
      (await streamOf(id).listSubscriptions()).every((s) => s.lag === 0),
    );
    const after = await decide(id, callId);
    expect(after.status).toBe(409);
    await after.body?.cancel();
    expect((await sessionEvents(id)).map((e) => e.type)).not.toContain("tool/approval-decided");
  });
});
