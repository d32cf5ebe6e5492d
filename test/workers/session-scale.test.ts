/**
 * Sessions that scale with their history (issue 9), with the scripted model at zero delay:
 * hundreds of 8 KB turns (past 2 MB of conversation, where a request that embedded the whole
 * conversation no longer fit one event) complete; no processor state grows with them; the log
 * grows linearly; the transcript stays readable page by page; and once the transcript exceeds
 * the scripted model's context budget, prompts are a compaction summary plus a window.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { SessionLive, TranscriptPage } from "../../src/sessions/agent-rpc";
import { CONTEXT_BUDGETS } from "../../src/sessions/models/registry";
import {
  api,
  createSession,
  sessionAgent,
  sessionEvents,
  sessionRpc,
} from "../support/session-api";
import { waitFor } from "../support/wait";

/** A processor state row may never be larger than this, however long the session. */
const STATE_BOUND = 16 * 1024;

/** `words` words of `size` characters, unique to `tag`: few deltas per reply, many bytes. */
const bulky = (tag: string, words: number, size: number) =>
  Array.from({ length: words }, (_, w) => `${tag}w${w}`.padEnd(size, "x")).join(" ");

async function live(id: string): Promise<SessionLive> {
  return (await sessionRpc(id).live()) as SessionLive;
}

/** Sends a message and waits until its turn has completed (the transcript holds `messages`). */
async function turn(id: string, content: string, messages: number): Promise<SessionLive> {
  await sessionRpc(id).sendMessage(content);
  return settled(id, messages);
}

/** Waits until the session is idle with `messages` transcript messages. */
async function settled(id: string, messages: number): Promise<SessionLive> {
  let last: SessionLive | undefined;
  await waitFor(
    async () => {
      last = await live(id);
      if (last.status === "failed") throw new Error(`session failed: ${last.lastError}`);
      return last.status === "idle" && last.messageCount >= messages;
    },
    30_000,
    10,
  );
  return last!;
}

async function stateRows(id: string) {
  return runInDurableObject(sessionAgent(id), (_instance, state) =>
    state.storage.sql
      .exec<{ processor: string; bytes: number }>(
        "SELECT processor, length(state) AS bytes FROM processor_state",
      )
      .toArray(),
  );
}

async function transcript(id: string): Promise<TranscriptPage["messages"]> {
  const out: TranscriptPage["messages"] = [];
  let from: number | null = 0;
  while (from !== null) {
    const res = await api(`/v1/sessions/${id}/messages?from=${from}&limit=200`);
    expect(res.status).toBe(200);
    const page = (await res.json()) as TranscriptPage;
    out.push(...page.messages);
    from = page.next;
  }
  return out;
}

const textOf = (m: object) => ("content" in m && typeof m.content === "string" ? m.content : "");

describe("sessions that scale with their history", () => {
  it("completes 300 turns of 8 KB with bounded state, a linear log and the whole transcript readable", async () => {
    const id = await createSession({ title: "long" });
    const TURNS = 300;
    let conversationBytes = 0;
    let view: SessionLive | undefined;
    let expected = 0;
    // Ten messages at a time (queued, answered in order), then wait for their turns.
    for (let i = 0; i < TURNS; i++) {
      // Every 25th turn calls a tool, so the tools processor sees many calls too.
      const content =
        i % 25 === 24 ? `call echo {"text":"${bulky(`t${i}`, 4, 200)}"}` : bulky(`t${i}`, 8, 1024);
      expected += i % 25 === 24 ? 4 : 2;
      await sessionRpc(id).sendMessage(content);
      if (i % 10 === 9) view = await settled(id, expected);
    }
    const all = await transcript(id);
    expect(all).toHaveLength(view!.messageCount);
    expect(all.map((m) => m.index)).toEqual(all.map((_, i) => i));
    for (const m of all) conversationBytes += new TextEncoder().encode(textOf(m)).length;
    expect(conversationBytes).toBeGreaterThan(2 * 1024 * 1024);
    expect(textOf(all[0]!)).toBe(bulky("t0", 8, 1024));
    expect(textOf(all[1]!)).toBe(`You said: ${bulky("t0", 8, 1024)}`);
    expect(all.filter((m) => m.role === "tool")).toHaveLength(TURNS / 25);

    // No processor state grows with the conversation.
    const rows = await stateRows(id);
    expect(rows.map((r) => r.processor).sort()).toEqual(["agent", "index", "model", "tools"]);
    for (const row of rows) expect(row.bytes, row.processor).toBeLessThan(STATE_BOUND);

    // The log grows linearly: no event re-embeds the conversation.
    const events = await sessionEvents(id);
    const logBytes = events.reduce((sum, e) => sum + JSON.stringify(e.payload).length, 0);
    expect(logBytes).toBeLessThan(2 * conversationBytes + TURNS * 4 * 1024);
    const biggest = Math.max(...events.map((e) => JSON.stringify(e.payload).length));
    expect(biggest).toBeLessThan(20 * 1024);

    // The live view holds a bounded window of the newest messages.
    expect(view!.messages.length).toBeLessThanOrEqual(20);
    expect(view!.messagesFrom + view!.messages.length).toBe(view!.messageCount);
    expect(events.some((e) => e.type === "context/compacted")).toBe(true);
  }, 120_000);

  it("builds prompts from a compaction summary and a window once the budget is exceeded", async () => {
    const id = await createSession({ title: "window", system: "be brief" });
    let view = await turn(id, "history", 2);
    expect(view.messages[1]).toMatchObject({
      role: "assistant",
      content: 'History: 1 messages; summary: no; first: "history"',
    });
    // Five turns of 6 KB each way: 60 KB, past the scripted model's 32 KB budget.
    expect(CONTEXT_BUDGETS.scripted).toBe(32 * 1024);
    for (let i = 0; i < 5; i++) view = await turn(id, bulky(`c${i}`, 6, 1024), 4 + 2 * i);
    view = await turn(id, "history", 14);
    const reply = textOf(view.messages.at(-1)!);
    const match = /^History: (\d+) messages; summary: yes; first: /.exec(reply);
    expect(match, reply).not.toBeNull();
    expect(Number(match![1])).toBeLessThan(13);

    const events = await sessionEvents(id);
    const requested = events.filter((e) => e.type === "context/compaction-requested");
    const compacted = events.filter((e) => e.type === "context/compacted");
    expect(compacted.length).toBeGreaterThanOrEqual(1);
    expect(requested).toHaveLength(compacted.length);
    const last = compacted.at(-1)!.payload as {
      fromMessage: number;
      throughMessage: number;
      summary: string;
    };
    expect(last.summary).toMatch(/^Summary of \d+ messages: /);
    // The window the last prompt held starts where the summary ends.
    expect(Number(match![1])).toBe(13 - last.throughMessage);
    const first = compacted[0]!.payload as { fromMessage: number; summary: string };
    expect(first.fromMessage).toBe(0);
    expect(first.summary).toContain("[user] history");

    // History is never deleted.
    const all = await transcript(id);
    expect(all).toHaveLength(14);
    expect(textOf(all[2]!)).toBe(bulky("c0", 6, 1024));
  }, 60_000);

  it("pages the transcript and rejects bad page parameters", async () => {
    const id = await createSession();
    await turn(id, "one", 2);
    await turn(id, "two", 4);
    const res = await api(`/v1/sessions/${id}/messages?from=1&limit=2`);
    expect(await res.json()).toEqual({
      messages: [
        { index: 1, role: "assistant", content: "You said: one", toolCalls: [] },
        { index: 2, role: "user", content: "two" },
      ],
      messageCount: 4,
      next: 3,
    });
    const end = (await (await api(`/v1/sessions/${id}/messages?from=9`)).json()) as TranscriptPage;
    expect(end).toEqual({ messages: [], messageCount: 4, next: null });
    for (const bad of ["from=-1", "limit=0", "limit=201", "from=x"]) {
      const r = await api(`/v1/sessions/${id}/messages?${bad}`);
      expect(r.status, bad).toBe(400);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBeTruthy();
    }
    const missing = await api("/v1/sessions/01ARZ3NDEKTSV4RRFFQ69G5FAV/messages");
    expect(missing.status).toBe(404);
  });
});
