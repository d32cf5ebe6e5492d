/**
 * Compaction resumes after a crash like any model request: every Durable Object is aborted
 * while the scripted model (25 ms per word here) is writing a summary; the request runs again,
 * the compaction is recorded exactly once, the turn completes, and later prompts carry the
 * summary.
 */
import { abortAllDurableObjects, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  createSession,
  duplicateKeys,
  sessionAgent,
  sessionEvents,
  sessionRpc,
  settledSession,
} from "../support/session-api";
import { waitFor } from "../support/wait";

/**
 * Five short words (what the scripted summary quotes of each message, so that writing a
 * summary takes a while), then seven words of about 1 KB: 7 KB in a dozen deltas.
 */
const bulky = (tag: string) =>
  [
    ...Array.from({ length: 5 }, (_, w) => `${tag}${w}`),
    ...Array.from({ length: 7 }, (_, w) => `${tag}w${w}`.padEnd(1024, "x")),
  ].join(" ");

describe("context compaction", () => {
  it("completes a compaction once after the objects are aborted in the middle of it", async () => {
    const id = await createSession();
    await sessionRpc(id).sendMessage(bulky("a"));
    await settledSession(id, 2);
    await sessionRpc(id).sendMessage(bulky("b"));
    await settledSession(id, 4);
    // 35 KB of transcript with this input: past the scripted model's 32 KB budget.
    await sessionRpc(id).sendMessage(bulky("c"));
    await waitFor(async () =>
      (await sessionEvents(id)).some((e) => e.type === "context/compaction-requested"),
    );
    // Every Durable Object dies mid-summary; the watchdog alarm resumes the request.
    await abortAllDurableObjects();
    const atCrash = await sessionEvents(id);
    expect(atCrash.filter((e) => e.type === "context/compacted")).toHaveLength(0);
    await runDurableObjectAlarm(sessionAgent(id));
    const view = await settledSession(id, 6);
    expect(view.messages.at(-1)).toMatchObject({
      role: "assistant",
      content: `You said: ${bulky("c")}`,
    });

    const events = await sessionEvents(id);
    expect(duplicateKeys(events)).toEqual([]);
    expect(events.filter((e) => e.type === "context/compaction-requested")).toHaveLength(1);
    const compacted = events.filter((e) => e.type === "context/compacted");
    expect(compacted).toHaveLength(1);
    const payload = compacted[0]!.payload as {
      fromMessage: number;
      throughMessage: number;
      summary: string;
    };
    expect(payload.fromMessage).toBe(0);
    expect(payload.summary).toMatch(
      new RegExp(`^Summary of ${payload.throughMessage} messages: \\[user\\] a0 a1 a2 a3 a4 \\|`),
    );
    // The request was executed again after the eviction (a second attempt).
    const request = events.find(
      (e) =>
        e.type === "context/compaction-requested" &&
        typeof (e.payload as { requestId: string }).requestId === "string",
    )!.payload as { requestId: string };
    const attempts = events
      .filter(
        (e) =>
          e.type === "model/request-started" &&
          (e.payload as { requestId: string }).requestId === request.requestId,
      )
      .map((e) => (e.payload as { attempt: number }).attempt);
    expect(Math.max(...attempts)).toBeGreaterThanOrEqual(2);
    expect(events.filter((e) => e.type === "model/request-completed")).toHaveLength(3);

    // Later prompts use the summary.
    await sessionRpc(id).sendMessage("history");
    const after = await settledSession(id, 8);
    expect(after.messages.at(-1)).toMatchObject({
      content: expect.stringMatching(/^History: \d+ messages; summary: yes; /),
    });
  });
});
