import { describe, expect, it } from "vitest";
import type { ProcessorHost } from "../../src/processors/host";
import type { DeliveryBatch } from "../../src/streams/delivery";
import { runInDurableObject } from "../support/rpc";
import {
  createSession,
  duplicateKeys,
  getSession,
  sendMessage,
  sessionAgent,
  sessionEvents,
  settledSession,
  waitForSession,
} from "../support/session-api";
import { streamClient } from "../support/streams";
import { waitFor } from "../support/wait";

const sessionStream = (id: string) => streamClient(`default:/sessions/${id}`);

/** Every subscription of the session has been delivered the whole stream. */
const deliveredAll = (id: string) => async () =>
  (await sessionStream(id).listSubscriptions()).every((s) => s.status === "active" && s.lag === 0);

/**
 * Holds every delivery to the session's SessionAgent (its host's `deliver` waits) until the
 * returned function is called. Lost, like any in-memory patch, when the object is evicted.
 */
async function holdDeliveries(id: string): Promise<{ held: () => number; release(): void }> {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let held = 0;
  await runInDurableObject(sessionAgent(id), (instance: { host: ProcessorHost }) => {
    const original = instance.host.deliver.bind(instance.host);
    instance.host.deliver = async (batch: DeliveryBatch) => {
      held++;
      await gate;
      return original(batch);
    };
  });
  return { held: () => held, release };
}

const ofType = (events: { type: string | null }[], type: string) =>
  events.filter((e) => e.type === type);

/** A session with one finished turn (reached the ordinary way) and all of it delivered. */
async function warmSession(): Promise<string> {
  const id = await createSession();
  await sendMessage(id, "warm up");
  await settledSession(id, 2);
  await waitFor(deliveredAll(id));
  return id;
}

describe("local feed", () => {
  it("a warm turn is fed locally and acknowledged: nothing is delivered back", async () => {
    const id = await warmSession();
    const hold = await holdDeliveries(id);
    await sendMessage(id, "fed locally");
    const done = await settledSession(id, 4);
    expect(done.messages.at(-1)).toMatchObject({
      role: "assistant",
      content: "You said: fed locally",
    });
    // Every subscription reaches the tail on the SessionAgent's acknowledgements alone
    // (streams/feed-leases.ts): the stream delivers none of the turn's events back to it.
    await waitFor(deliveredAll(id));
    expect(hold.held()).toBe(0);

    hold.release();
    const after = await settledSession(id, 4);
    expect(after.messageCount).toBe(4);
    const events = await sessionEvents(id);
    expect(duplicateKeys(events)).toEqual([]);
    for (const type of [
      "turn/started",
      "model/request-requested",
      "model/request-completed",
      "turn/completed",
    ])
      expect(ofType(events, type), type).toHaveLength(2);
  });

  it("finishes a turn once when the SessionAgent crashes mid-reply with deliveries held", async () => {
    const id = await warmSession();
    await holdDeliveries(id);
    const long = Array.from({ length: 60 }, (_, i) => `w${i}`).join(" ");
    await sendMessage(id, long);
    await waitFor(
      async () => ofType(await sessionEvents(id), "model/delta-produced").length >= 3 + 2,
    );
    // A crash: the held deliveries and the streaming reply die with the instance; the next
    // instance has no hold, so the stream's deliveries take over where local feed stopped.
    try {
      await runInDurableObject(sessionAgent(id), (_i: unknown, state: DurableObjectState) => {
        state.abort("aborted by the test");
      });
    } catch {
      // The abort also ends this call.
    }
    await getSession(id);
    const done = await waitForSession(
      id,
      (s) =>
        s.live.status === "idle" &&
        s.live.messages.filter((m) => m.role === "assistant").length === 2,
    );
    expect(done.live.messages.at(-1)).toMatchObject({
      role: "assistant",
      content: `You said: ${long}`,
    });
    await waitFor(deliveredAll(id));
    const events = await sessionEvents(id);
    expect(duplicateKeys(events)).toEqual([]);
    expect(ofType(events, "model/request-completed")).toHaveLength(2);
    expect(ofType(events, "turn/completed")).toHaveLength(2);
  });
});
