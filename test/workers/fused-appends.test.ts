/**
 * Fused appends in a session (src/processors/fused-appends.ts): what the agent owes because
 * of a message or a reply goes out in the same commit when the SessionAgent can predict where
 * it lands, and otherwise the events go alone and the agent appends its part as before. Either
 * way each event is stored once and the turn completes once.
 */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { StreamEvent } from "../../src/streams/messages";
import {
  createSession,
  duplicateKeys,
  sendMessage,
  sessionEvents,
  settledSession,
} from "../support/session-api";
import { streamClient } from "../support/streams";

const ofType = (events: StreamEvent[], type: string) => events.filter((e) => e.type === type);

const flags = env as { TRACE_TURNS?: string };

/** The first offsets of the fused appends logged while tracing (src/trace.ts: host.fused). */
function tracedFusions(): () => number[] {
  flags.TRACE_TURNS = "true";
  const log = vi.spyOn(console, "log").mockImplementation(() => undefined);
  return () =>
    log.mock.calls
      .map((call) => call[0])
      .filter((line): line is string => typeof line === "string" && line.includes('"host.fused"'))
      .map((line) => (JSON.parse(line) as { offsets: number[] }).offsets[0]!);
}

async function warmSession(): Promise<string> {
  const id = await createSession();
  await sendMessage(id, "warm up");
  await settledSession(id, 2);
  return id;
}

describe("fused appends in a session", () => {
  afterEach(() => {
    delete flags.TRACE_TURNS;
    vi.restoreAllMocks();
  });

  it("a message's commit carries the turn's start and model request", async () => {
    const id = await warmSession();
    const fusions = tracedFusions();
    const { offset } = await sendMessage(id, "fuse me");
    await settledSession(id, 4);
    const events = await sessionEvents(id);
    const at = events.findIndex((e) => e.offset === offset);
    expect(events.slice(at, at + 3).map((e) => e.type)).toEqual([
      "session/input-added",
      "turn/started",
      "model/request-requested",
    ]);
    // One commit: the same commit time, and keyed as the agent's own appends.
    expect(new Set(events.slice(at, at + 3).map((e) => e.createdAt)).size).toBe(1);
    expect(events[at + 1]!.idempotencyKey).toBe(`agent/start-turn@${offset}`);
    expect(fusions()).toContain(offset);
    expect(duplicateKeys(events)).toEqual([]);
  });

  it("another writer's append in between: the message goes alone, the agent starts the turn once", async () => {
    const id = await warmSession();
    // The SessionAgent's idea of the tail is now stale: its prediction cannot hold.
    await streamClient(`default:/sessions/${id}`).appendBatch([
      { type: "app/note", payload: { text: "from elsewhere" } },
    ]);
    const fusions = tracedFusions();
    const { offset } = await sendMessage(id, "after a foreign append");
    const done = await settledSession(id, 4);
    expect(done.status).toBe("idle");
    const events = await sessionEvents(id);
    expect(
      ofType(events, "turn/started").map((e) => (e.payload as { inputOffset: number }).inputOffset),
    ).toContain(offset);
    expect(ofType(events, "turn/started")).toHaveLength(2);
    expect(ofType(events, "turn/completed")).toHaveLength(2);
    expect(duplicateKeys(events)).toEqual([]);
    // The message went alone (the prediction failed); the reply's append fused again.
    expect(fusions()).not.toContain(offset);
    expect(fusions().length).toBeGreaterThan(0);
  });

  it("a message sent again with its idempotency key starts no second turn", async () => {
    const id = await warmSession();
    const first = await sendMessage(id, "only once", "key-1");
    await settledSession(id, 4);
    const again = await sendMessage(id, "only once", "key-1");
    expect(again.offset).toBe(first.offset);
    await settledSession(id, 4);
    const events = await sessionEvents(id);
    expect(ofType(events, "session/input-added")).toHaveLength(2);
    expect(ofType(events, "turn/started")).toHaveLength(2);
    expect(duplicateKeys(events)).toEqual([]);
  });
});
