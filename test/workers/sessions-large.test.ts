/**
 * Sessions with large content (issue 9, requirements 3 and 4), scripted model at zero delay:
 * long replies stream as few, bounded delta events; large user messages, replies and tool
 * results are stored as chunk events that events reference; limits are enforced at the door
 * with a 413; content over the model's per-message budget reaches it cut, with a note; an
 * outcome the stream refuses fails the session visibly.
 */

import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { assembleContent, CHUNK_EVENT, type ContentRef } from "../../src/sessions/content";
import { splitWords } from "../../src/sessions/models/scripted";
import { scriptedReplyText } from "../../src/sessions/models/scripted-plan";
import { DEFAULT_DELTA_LIMITS } from "../../src/sessions/processors/delta-writer";
import { blobText } from "../../src/sessions/tools/builtin";
import type { StreamEvent } from "../../src/streams/messages";
import { streamStub } from "../../src/streams/stub";
import { rpcClient, runInDurableObject } from "../support/rpc";
import {
  api,
  createSession,
  duplicateKeys,
  post,
  type SessionView,
  sendMessage,
  sessionAgent,
  waitForSession,
} from "../support/session-api";
import { waitFor } from "../support/wait";

/** A number from the session's SQLite (`SELECT … AS n`). */
const agentSql = (id: string, query: string) =>
  runInDurableObject(sessionAgent(id), (_instance, state) =>
    Number(state.storage.sql.exec<{ n: number }>(query).one().n),
  );

const BUDGET = Number(env.MODEL_CONTENT_MAX_BYTES);
const MiB = 1024 * 1024;

/** The whole session stream, read in small pages (some events are half a megabyte). */
async function allEvents(id: string): Promise<StreamEvent[]> {
  const stub = rpcClient(streamStub(env, `default:/sessions/${id}`));
  const out: StreamEvent[] = [];
  for (;;) {
    const page = await stub.read({ after: out.at(-1)?.offset ?? 0, limit: 20 });
    out.push(...(page.events as StreamEvent[]));
    if (page.upToDate) return out;
  }
}

const ofType = (events: StreamEvent[], type: string) =>
  events.filter((e) => e.type === type) as (StreamEvent & { payload: Record<string, unknown> })[];

/** The turn has ended: failed, or idle with the model's answer as the last message. */
const done = (s: SessionView) =>
  s.live.status === "failed" ||
  (s.live.status === "idle" && s.live.messages.at(-1)?.role === "assistant");

/** The delta text of the request's last attempt, checking the deltas' bounds on the way. */
function deltaText(events: StreamEvent[]): { text: string; count: number } {
  const deltas = ofType(events, "model/delta-produced");
  const last = Math.max(...deltas.map((d) => d.payload.attempt as number));
  const mine = deltas.filter((d) => d.payload.attempt === last);
  expect(mine.map((d) => d.payload.index)).toEqual(mine.map((_, i) => i));
  for (const d of mine) expect((d.payload.text as string).length).toBeLessThanOrEqual(64 * 1024);
  return { text: mine.map((d) => d.payload.text as string).join(""), count: mine.length };
}

describe("long replies stream as coalesced deltas", () => {
  it("a 60 KB message completes its turn with far fewer delta events than words", async () => {
    const id = await createSession();
    const message = "word ".repeat(12_000).trim(); // ~60 KB, 12,000 words
    await sendMessage(id, message);
    const session = await waitForSession(id, done, 60_000);
    expect(session.live.status).toBe("idle");
    const events = await allEvents(id);
    // turn/completed names the turn; the reply is its model/request-completed
    const completed = ofType(events, "model/request-completed").at(-1)!;
    expect(completed.payload.text).toBe(`You said: ${message}`);
    const words = splitWords(`You said: ${message}`).length;
    const { text, count } = deltaText(events);
    expect(text).toBe(completed.payload.text);
    expect(count).toBeLessThan(words / 20);
    expect(duplicateKeys(events)).toEqual([]);
  });

  it("a 1 MB reply streams and completes; the completion references chunks equal to the deltas", async () => {
    const id = await createSession();
    await sendMessage(id, `reply ${MiB}`);
    const session = await waitForSession(id, done, 90_000);
    expect(session.live.status).toBe("idle");
    const events = await allEvents(id);
    const expected = scriptedReplyText(MiB);
    const { text, count } = deltaText(events);
    expect(text).toBe(expected);
    // the first append carried what the model produced in its first task (a prefix, within
    // one event's bound); later appends carried what piled up meanwhile, in few events
    const first = String(ofType(events, "model/delta-produced")[0]!.payload.text);
    expect(first.length).toBeGreaterThan(0);
    expect(expected.startsWith(first)).toBe(true);
    expect(first.length).toBeLessThanOrEqual(DEFAULT_DELTA_LIMITS.maxEventBytes);
    expect(count).toBeGreaterThan(1);
    expect(count).toBeLessThan(splitWords(expected).length / 100);
    const completion = ofType(events, "model/request-completed")[0]!;
    expect(completion.payload.text).toBe("");
    const ref = completion.payload.textRef as ContentRef;
    expect(ref.bytes).toBe(MiB);
    expect(await assembleContent(ref, events)).toBe(expected);
    // the turn's completion references the reply rather than embedding it again
    expect(ofType(events, "turn/completed")[0]!.payload).toEqual({
      turnId: expect.any(String),
    });
    // no stored event comes near the message limit
    for (const e of events) expect(JSON.stringify(e.payload).length).toBeLessThan(600 * 1024);
  }, 120_000);
});

describe("large user messages", () => {
  it("a 3 MiB message is stored in chunks and reaches the model cut to its budget, with a note", async () => {
    const id = await createSession();
    const content = "m".repeat(3 * MiB);
    const first = await sendMessage(id, content, "big-1");
    const again = await sendMessage(id, content, "big-1"); // an idempotent retry
    expect(again.offset).toBe(first.offset);
    const session = await waitForSession(id, done, 90_000);
    expect(session.live.status).toBe("idle");
    const events = await allEvents(id);
    expect(duplicateKeys(events)).toEqual([]);
    const input = ofType(events, "session/input-added");
    expect(input).toHaveLength(1);
    const ref = input[0]!.payload.contentRef as ContentRef;
    expect(input[0]!.payload.content).toBe("");
    expect(ref.bytes).toBe(3 * MiB);
    expect(ofType(events, CHUNK_EVENT).length).toBeGreaterThan(ref.chunks); // + the reply's
    expect(await assembleContent(ref, events)).toBe(content);
    // the turn names its input by offset; the transcript row keeps the ref, not a copy
    expect(ofType(events, "turn/started")[0]!.payload.inputOffset).toBe(input[0]!.offset);
    const { text } = deltaText(events);
    expect(text).toBe(
      `You said: ${"m".repeat(BUDGET)}\n[truncated: ${BUDGET} of ${3 * MiB} bytes]`,
    );
  }, 120_000);

  it("refuses a body over the 8 MiB request limit with a 413 naming the limit, and stores nothing", async () => {
    const id = await createSession();
    const res = await post(`/v1/sessions/${id}/messages`, { content: "x".repeat(8 * MiB) });
    expect(res.status).toBe(413);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("payload_too_large");
    expect(body.error.message).toContain(String(8 * MiB));
    const events = await allEvents(id);
    expect(events.map((e) => e.type)).not.toContain("session/input-added");
    expect(events.map((e) => e.type)).not.toContain(CHUNK_EVENT);
    // other session routes keep a 1 MiB limit, also answered with a 413
    const create = await api("/v1/sessions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ title: "x", system: "y".repeat(2 * MiB) }),
    });
    expect(create.status).toBe(413);
    expect(((await create.json()) as { error: { message: string } }).error.message).toContain(
      String(MiB),
    );
  });
});

describe("large content in the transcript", () => {
  it("a chunked message is a ref in the transcript, counts with its size for compaction, and is summarised from its text", async () => {
    const id = await createSession();
    const words = "alpha beta gamma delta epsilon zeta ";
    const content = words.repeat(Math.ceil((3 * MiB) / words.length)).slice(0, 3 * MiB);
    await sendMessage(id, content);
    await waitForSession(id, done, 90_000);
    await sendMessage(id, "history");
    const session = await waitForSession(
      id,
      (s) =>
        s.live.status === "failed" ||
        (s.live.status === "idle" && isHistory(s.live.messages.at(-1))),
      90_000,
    );
    expect(session.live.status).toBe("idle");
    const events = await allEvents(id);
    const ref = ofType(events, "session/input-added")[0]!.payload.contentRef as ContentRef;
    // The transcript row holds the reference (not a copy of 3 MiB) and pages return it.
    const page = (await (await api(`/v1/sessions/${id}/messages?from=0&limit=1`)).json()) as {
      messages: { index: number; role: string; content: string; contentRef?: ContentRef }[];
      messageCount: number;
    };
    expect(page.messageCount).toBe(4);
    expect(page.messages[0]).toMatchObject({ index: 0, role: "user", content: "" });
    expect(page.messages[0]!.contentRef).toEqual(ref);
    // Its byte count (not the empty inline text) put the transcript over the scripted model's
    // budget, so the second request compacted it; the summary was made from the chunks' text.
    const compacted = ofType(events, "context/compacted");
    expect(compacted).toHaveLength(1);
    expect(compacted[0]!.payload.fromMessage).toBe(0);
    expect(compacted[0]!.payload.summary).toContain("[user] alpha beta gamma delta epsilon");
  }, 180_000);
});

describe("large tool results", () => {
  it("an 8 MiB tool result is stored in bounded chunk appends and the model is told it was cut", async () => {
    const id = await createSession({ tools: ["blob_make"] });
    const bytes = 8 * MiB - 2; // the result's JSON (a string) is exactly 8 MiB
    await sendMessage(id, `call blob_make {"bytes":${bytes}}`);
    const session = await waitForSession(id, done, 120_000);
    expect(session.live.status).toBe("idle");
    const events = await allEvents(id);
    expect(duplicateKeys(events)).toEqual([]);
    const completed = ofType(events, "tool/call-completed")[0]!;
    expect(completed.payload.isError).toBe(false);
    expect(completed.payload.result).toBeNull();
    const ref = completed.payload.resultRef as ContentRef;
    expect(ref.bytes).toBe(8 * MiB);
    expect(JSON.parse(await assembleContent(ref, events))).toBe(blobText(bytes));
    // ≤ 512 KiB stored each (the JSON string's two quotes are escaped: one more chunk)
    expect(ref.chunks).toBe(17);
    // The SessionAgent keeps no copy once the stream holds the completion, and its processors'
    // state holds references, not the content.
    await waitFor(
      async () => (await agentSql(id, "SELECT COUNT(*) AS n FROM tool_result_chunks")) === 0,
    );
    expect(await agentSql(id, "SELECT MAX(LENGTH(state)) AS n FROM processor_state")).toBeLessThan(
      64 * 1024,
    );
    const reply = ofType(events, "model/request-completed").at(-1)!;
    const replyText =
      (reply.payload.text as string) ||
      (await assembleContent(reply.payload.textRef as ContentRef, events));
    expect(replyText).toMatch(
      new RegExp(
        `^Tool results: blob_make returned ".*\\\\n\\[truncated: \\d+ of ${8 * MiB} bytes\\]"\\.$`,
      ),
    );
  }, 180_000);
});

describe("nothing is stuck in silence", () => {
  it("a model outcome the stream refuses fails the request and the session shows failed with lastError", async () => {
    const id = await createSession({ tools: ["echo"] });
    // A 2 MB argument: the model's tool call does not fit one stored event.
    await sendMessage(id, `call echo {"text":"${"a".repeat(2_000_000)}"}`);
    const session = await waitForSession(id, done, 60_000);
    expect(session.live.status).toBe("failed");
    expect(session.live.lastError).toMatch(/could not be stored.*1900000-byte limit/);
    const events = await allEvents(id);
    const failed = ofType(events, "model/request-failed")[0]!;
    expect(failed.payload.status).toBe(413);
    expect(ofType(events, "session/failed")).toHaveLength(1);
  }, 90_000);
});

const isHistory = (message: object | undefined) =>
  message !== undefined &&
  "content" in message &&
  typeof message.content === "string" &&
  message.content.startsWith("History");
