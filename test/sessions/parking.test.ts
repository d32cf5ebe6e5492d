/**
 * A session whose own processor is stuck is not left looking `idle`: once the stream parks
 * the processor's subscription (DELIVERY_MAX_ATTEMPTS = 6 in vitest.config.ts), the index
 * processor sees `stream/subscriber-parked` on the session stream and the session shows
 * `failed` with the error, in D1 and in GET /v1/sessions/:id, across an eviction of the
 * SessionAgent; resuming the subscription runs the turn and the session recovers.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { SessionList } from "../../src/client/types";
import type { SessionAgent } from "../../src/sessions/session-agent";
import { streamStub } from "../../src/streams/stub";
import { subscriberStub } from "../support/fixtures";
import { evictDurableObject, rpcClient, runInDurableObject } from "../support/rpc";
import {
  api,
  createSession,
  getSession,
  post,
  sendMessage,
  sessionAgent,
  sessionEvents,
  waitForSession,
} from "../support/session-api";
import { pumpUntil } from "../support/streams";

const streamOf = (id: string) => rpcClient(streamStub(env, `default:/sessions/${id}`));

async function d1Row(id: string) {
  return env.DB.prepare("SELECT status, last_error FROM sessions WHERE id = ?")
    .bind(id)
    .first<{ status: string; last_error: string | null }>();
}

/**
 * Makes the agent processor fail on every message it is given, as when it cannot append its
 * reply. (It fails in `reduce`, so its host cannot work out ahead what it would owe and append
 * that for it either: processors/fused-appends.ts.)
 */
async function breakAgent(id: string) {
  await runInDurableObject(sessionAgent(id), (instance: SessionAgent) => {
    // An own property shadows the prototype's method; it is lost when the object is evicted.
    const reduce = instance.agent.reduce.bind(instance.agent);
    instance.agent.reduce = (args) => {
      if (args.event.type === "session/input-added")
        throw new Error("agent could not append its reply (simulated)");
      return reduce(args);
    };
  });
}

describe("a stuck session processor", () => {
  it("the accepted-but-never-answered message ends `failed` visibly, survives eviction, and recovers when resumed", async () => {
    const id = await createSession({ title: "stuck" });
    await waitForSession(id, (s) => s.status === "idle");
    await breakAgent(id);

    const { offset } = await sendMessage(id, "hello there"); // 202: accepted
    const stream = streamOf(id);
    const agentKey = `agent@SESSIONS/default:${id}`;
    await pumpUntil(stream, async () => {
      const view = await getSession(id);
      return view.status === "failed" && view.live.status === "failed";
    });

    const view = await getSession(id);
    expect(view.lastError).toMatch(
      new RegExp(`agent processor parked at offset ${offset}: .*could not append its reply`),
    );
    expect(view.live.lastError).toBe(view.lastError);
    expect(await d1Row(id)).toMatchObject({ status: "failed" });
    const listed = (await (
      await api("/v1/sessions?status=failed&limit=100")
    ).json()) as SessionList;
    expect(listed.sessions.map((s) => s.id)).toContain(id);
    const sub = (await stream.listSubscriptions()).find((s) => s.key === agentKey)!;
    expect(sub).toMatchObject({ status: "parked", stuckOffset: offset });

    // The SessionAgent is evicted (which also drops the simulated bug, as a fixed deploy
    // would): the failure is durable, not a memory of the old instance.
    await evictDurableObject(sessionAgent(id));
    expect(await getSession(id)).toMatchObject({ status: "failed", live: { status: "failed" } });

    const res = await post(
      `/v1/subscriptions/resume?stream=${encodeURIComponent(`/sessions/${id}`)}&key=${encodeURIComponent(agentKey)}`,
    );
    expect(res.status).toBe(200);
    await res.body?.cancel();

    const recovered = await waitForSession(
      id,
      (s) =>
        s.status === "idle" &&
        s.live.status === "idle" &&
        s.live.messages.some((m) => m.role === "assistant"),
    );
    expect(recovered.lastError).toBeNull();
    expect(recovered.live.lastError).toBeNull();
    expect(recovered.live.messages.find((m) => m.role === "assistant")!.content).toMatch(
      /You said: hello there/,
    );
    expect(await d1Row(id)).toMatchObject({ status: "idle", last_error: null });
    const types = (await sessionEvents(id)).map((e) => e.type);
    expect(types).toContain("stream/subscriber-parked");
    expect(types).toContain("stream/subscriber-resumed");
  });

  it("a parked subscription that is not the session's own leaves the session alone", async () => {
    const id = await createSession({ title: "not mine" });
    await waitForSession(id, (s) => s.status === "idle");
    const stream = streamOf(id);
    // A tenant's own subscriber on the session stream, under a key that mimics a processor's.
    await stream.configureSubscription({
      key: `agent@SESSIONS/default:someone-else`,
      callable: {
        kind: "durable-object",
        binding: "TEST_SUBSCRIBERS",
        name: `stranger-${crypto.randomUUID()}`,
        method: "receive",
      },
      eventTypes: ["session/input-added"],
    });
    const subscriber = subscriberStub(
      (
        (await stream.listSubscriptions()).find((s) => s.key.endsWith("someone-else"))!
          .callable as { name: string }
      ).name,
    );
    await subscriber.failNext(1_000);
    await sendMessage(id, "hi");
    await pumpUntil(stream, async () =>
      (await stream.listSubscriptions()).some((s) => s.status === "parked"),
    );
    const done = await waitForSession(
      id,
      (s) => s.status === "idle" && s.live.messages.some((m) => m.role === "assistant"),
    );
    expect(done.live.status).toBe("idle");
    expect(done.lastError).toBeNull();
  });
});
