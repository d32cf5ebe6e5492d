/**
 * How many commits a reply costs: the model's `request-started` rides on the reply's first
 * delta, and its completion on the reply's last deltas; a reply the model produces within one
 * task (the scripted model at no delay here) is ONE append by the model instead of four (each
 * append is a Stream DO commit and a round trip on the turn's path). A streamed reply is cut as
 * it arrives (test/sessions run the model with a delay). The events and their order on the
 * stream are as before.
 */
import { describe, expect, it } from "vitest";
import type { ProcessorStreams } from "../../src/processors/host";
import { runInDurableObject } from "../support/rpc";
import {
  createSession,
  duplicateKeys,
  sessionAgent,
  sessionEvents,
  sessionRpc,
  settledSession,
} from "../support/session-api";

/** What the model appends while it runs an attempt. */
const MODEL_OUTPUT = new Set([
  "model/request-started",
  "model/delta-produced",
  "model/request-completed",
]);

/** Records the event types of every append the SessionAgent's processors make. */
async function recordAppends(id: string): Promise<string[][]> {
  const batches: string[][] = [];
  await runInDurableObject(
    sessionAgent(id),
    (instance: { host: { streams: ProcessorStreams } }) => {
      const streams = instance.host.streams;
      const original = streams.appendAsProcessor.bind(streams);
      streams.appendAsProcessor = (name, events, options) => {
        batches.push(events.map((e) => e.type));
        return original(name, events, options);
      };
    },
  );
  return batches;
}

describe("the model's appends", () => {
  it("a reply complete at once is one append: started, its deltas, completed (and the turn's end)", async () => {
    const id = await createSession();
    await sessionRpc(id).sendMessage("warm up");
    await settledSession(id, 2);
    const batches = await recordAppends(id);
    await sessionRpc(id).sendMessage("say something with several words please");
    await settledSession(id, 4);

    const model = batches.filter((b) => b.some((t) => MODEL_OUTPUT.has(t)));
    expect(model.length).toBe(1);
    expect(model[0]![0]).toBe("model/request-started");
    expect(model[0]).toContain("model/delta-produced");
    // What the agent owes because of the reply rides along (processors/fused-appends.ts).
    expect(model[0]!.slice(-2)).toEqual(["model/request-completed", "turn/completed"]);

    // The stream reads as before: started, deltas in index order, completed; nothing doubled.
    const events = await sessionEvents(id);
    const turn = events.slice(events.findLastIndex((e) => e.type === "session/input-added"));
    const types = turn
      .map((e) => e.type)
      .filter((t) => t?.startsWith("model/") && t !== "model/request-requested");
    expect(types[0]).toBe("model/request-started");
    expect(types.at(-1)).toBe("model/request-completed");
    const indexes = turn
      .filter((e) => e.type === "model/delta-produced")
      .map((e) => (e.payload as { index: number }).index);
    expect(indexes).toEqual(indexes.map((_, i) => i));
    expect(duplicateKeys(events)).toEqual([]);
  });

  it("a reply with no text still records its attempt (started rides on the completion)", async () => {
    const id = await createSession();
    await sessionRpc(id).sendMessage("warm up");
    await settledSession(id, 2);
    const batches = await recordAppends(id);
    await sessionRpc(id).sendMessage("call clock_now {}");
    await settledSession(id, 5);
    const completions = batches.filter((b) => b.includes("model/request-completed"));
    expect(completions.length).toBeGreaterThanOrEqual(1);
    // Every attempt that completed was started in the same or an earlier append.
    const events = await sessionEvents(id);
    const started = events.filter((e) => e.type === "model/request-started").length;
    const completed = events.filter((e) => e.type === "model/request-completed").length;
    expect(started).toBe(completed);
    expect(batches.some((b) => b.length === 1 && b[0] === "model/request-started")).toBe(false);
  });
});
