/**
 * The session HTTP API end to end inside workerd: validation, the D1 list, approvals,
 * queueing, cancel, delete, the events endpoint in both SSE dialects, and tenant isolation.
 * (This project's scripted model waits 25 ms per word, so turns can be caught mid-way.)
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Cancelled, SentMessage, SessionList } from "../../src/client/types";
import { subscriptionKeyFor } from "../../src/processors/host";
import { streamStub } from "../../src/streams/stub";
import { rpcClient } from "../support/rpc";
import {
  api,
  createSession,
  duplicateKeys,
  post,
  type SessionView,
  sendMessage,
  sessionEvents,
  waitForSession,
} from "../support/session-api";
import { parseSse } from "../support/sse";
import { waitFor } from "../support/wait";

const DEV_KEY = { authorization: "Bearer das_dev_local_development_key_0000" };

/** The session stream's subscriptions, read over RPC. */
const sessionStream = (id: string) => rpcClient(streamStub(env, `default:/sessions/${id}`));

/** The session as GET /v1/sessions/:id shows it, or null while that is a 404. */
async function getSessionOrNull(id: string): Promise<SessionView | null> {
  const res = await api(`/v1/sessions/${id}`);
  if (res.status === 404) {
    await res.body?.cancel();
    return null;
  }
  expect(res.status).toBe(200);
  return ((await res.json()) as { session: SessionView }).session;
}

async function errorOf(res: Response) {
  expect(res.headers.get("content-type")).toContain("application/json");
  return ((await res.json()) as { error: { code: string; message: string } }).error;
}

describe("creating and listing sessions", () => {
  it.each([
    ["not JSON", "{", 400],
    ["unknown tool", JSON.stringify({ tools: ["rm_rf"] }), 400],
    ["bad model spec", JSON.stringify({ model: "gpt 4 turbo!" }), 400],
    ["unknown field", JSON.stringify({ colour: "blue" }), 400],
    ["title too long", JSON.stringify({ title: "x".repeat(201) }), 400],
  ])("rejects %s", async (_name, body, status) => {
    const res = await api("/v1/sessions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    expect(res.status).toBe(status);
    expect((await errorOf(res)).message.length).toBeGreaterThan(0);
  });

  it("rejects a non-JSON content type (415)", async () => {
    const res = await api("/v1/sessions", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: "{}",
    });
    expect(res.status).toBe(415);
    expect((await errorOf(res)).code).toBe("unsupported_media_type");
  });

  it("lists sessions newest first, page by page, filtered by status", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await createSession({ title: `list ${i}` }));
    const page1 = (await (await api("/v1/sessions?limit=2")).json()) as SessionList;
    expect(page1.sessions.map((s) => s.id).slice(0, 2)).toEqual([ids[2], ids[1]]);
    const page2 = (await (
      await api(`/v1/sessions?limit=2&cursor=${encodeURIComponent(page1.nextCursor ?? "")}`)
    ).json()) as SessionList;
    expect(page2.sessions[0]!.id).toBe(ids[0]);
    const idle = (await (await api("/v1/sessions?status=idle&limit=100")).json()) as SessionList;
    expect(idle.sessions.every((s) => s.status === "idle")).toBe(true);
    for (const bad of ["limit=0", "limit=abc", "status=sleeping", "cursor=%%%"]) {
      const res = await api(`/v1/sessions?${bad}`);
      expect(res.status, bad).toBe(400);
      await res.body?.cancel();
    }
  });

  it("refuses a list limit over the maximum in the route's own validation", async () => {
    // The route validates the query before the database layer is reached; that layer has its
    // own guard (code bad_request), which must not be the only thing standing.
    for (const limit of ["101", "1000000"]) {
      const res = await api(`/v1/sessions?limit=${limit}`);
      expect(res.status, `limit=${limit}`).toBe(400);
      const body = (await res.json()) as {
        error: { code: string; message: string; details?: { issues?: { path: unknown[] }[] } };
      };
      expect(body.error.code, `limit=${limit}`).toBe("validation_failed");
      expect(body.error.message).toMatch(/^invalid query at limit: .*100/);
      expect(body.error.details?.issues?.[0]?.path).toEqual(["limit"]);
    }
    // The maximum itself is accepted.
    const max = await api("/v1/sessions?limit=100");
    expect(max.status).toBe(200);
    await max.body?.cancel();
  });

  it("answers 404 for unknown sessions and 400 for malformed ids", async () => {
    const unknown = await api("/v1/sessions/01ARZ3NDEKTSV4RRFFQ69G5FAV");
    expect(unknown.status).toBe(404);
    await unknown.body?.cancel();
    const malformed = await api("/v1/sessions/not-an-id");
    expect(malformed.status).toBe(400);
    await malformed.body?.cancel();
    const message = await post("/v1/sessions/01ARZ3NDEKTSV4RRFFQ69G5FAV/messages", {
      content: "hi",
    });
    expect(message.status).toBe(404);
    await message.body?.cancel();
  });

  it("hides one tenant's sessions from another", async () => {
    const id = await createSession({ title: "tenant default" });
    for (const path of [`/v1/sessions/${id}`, `/v1/sessions/${id}/events?offset=-1`]) {
      const res = await api(path, { headers: DEV_KEY });
      expect(res.status, path).toBe(404);
      await res.body?.cancel();
    }
    const send = await post(`/v1/sessions/${id}/messages`, { content: "hi" }, DEV_KEY);
    expect(send.status).toBe(404);
    await send.body?.cancel();
    const list = (await (
      await api("/v1/sessions?limit=100", { headers: DEV_KEY })
    ).json()) as SessionList;
    expect(list.sessions.map((s) => s.id)).not.toContain(id);
  });
});

describe("conversation", () => {
  it("queues a message sent while a turn runs and answers it afterwards", async () => {
    const id = await createSession();
    await sendMessage(id, "first message with several words in it");
    const second = await post(`/v1/sessions/${id}/messages`, { content: "second" });
    expect(second.status).toBe(202);
    expect(((await second.json()) as SentMessage).queued).toBe(true);
    const done = await waitForSession(
      id,
      (s) => s.live.status === "idle" && s.live.messages.length === 4,
    );
    expect(done.live.messages.map((m) => `${m.role}:${"content" in m ? m.content : ""}`)).toEqual([
      "user:first message with several words in it",
      "assistant:You said: first message with several words in it",
      "user:second",
      "assistant:You said: second",
    ]);
  });

  it("deduplicates a retried message by idempotency key", async () => {
    const id = await createSession();
    const a = await sendMessage(id, "only once", "retry-1");
    const b = await sendMessage(id, "only once", "retry-1");
    expect(b.offset).toBe(a.offset);
    await waitForSession(id, (s) => s.live.status === "idle" && s.live.messages.length === 2);
    const inputs = (await sessionEvents(id)).filter((e) => e.type === "session/input-added");
    expect(inputs).toHaveLength(1);
  });

  it("turns invalid tool arguments into a tool error the model sees", async () => {
    const id = await createSession();
    await sendMessage(id, 'call echo {"text": 42}');
    const done = await waitForSession(
      id,
      (s) => s.live.status === "idle" && s.live.messages.length === 4,
    );
    const tool = done.live.messages[2]!;
    expect(tool).toMatchObject({ role: "tool", isError: true });
    expect(JSON.stringify("result" in tool && tool.result)).toContain("invalid arguments for echo");
    expect(done.live.messages[3]).toMatchObject({ content: expect.stringContaining("echo") });
  });
});

describe("approvals", () => {
  async function awaitingApproval(note = "n") {
    const id = await createSession();
    await sendMessage(id, `call notes_write {"key":"${note}","text":"hello"}`);
    const view = await waitForSession(
      id,
      (s) => s.status === "awaiting_approval" && s.live.pendingApprovals.length === 1,
    );
    expect(view.live.pendingApprovals[0]).toMatchObject({
      toolName: "notes_write",
      args: { key: note, text: "hello" },
    });
    return { id, callId: view.live.pendingApprovals[0]!.toolCallId };
  }

  const decide = (id: string, callId: string, approved: boolean) =>
    post(`/v1/sessions/${id}/tool-calls/${callId}/decision`, {
      approved,
      reason: approved ? null : "not now",
    });

  it("shows awaiting_approval in the list, then completes with the tool's result", async () => {
    const { id, callId } = await awaitingApproval();
    const list = (await (
      await api("/v1/sessions?status=awaiting_approval&limit=100")
    ).json()) as SessionList;
    const listed = list.sessions.find((s) => s.id === id);
    expect(listed?.pendingApprovalCount).toBe(1);
    // The count's former name stays on the wire for clients that read it.
    expect(listed?.pendingApprovals).toBe(1);
    const res = await decide(id, callId, true);
    expect(res.status).toBe(200);
    await res.body?.cancel();
    const done = await waitForSession(id, (s) => s.status === "idle" && s.live.status === "idle");
    expect(done.live.messages.at(-1)).toMatchObject({
      content: expect.stringContaining('{"saved":true,"key":"n"}'),
    });
  });

  it("is idempotent for the same decision and refuses a different one", async () => {
    const { id, callId } = await awaitingApproval();
    const first = await decide(id, callId, false);
    expect(first.status).toBe(200);
    await first.body?.cancel();
    const again = await decide(id, callId, false);
    expect(again.status).toBe(200);
    await again.body?.cancel();
    const other = await decide(id, callId, true);
    expect(other.status).toBe(409);
    expect((await errorOf(other)).code).toBe("conflict");
    const done = await waitForSession(id, (s) => s.live.status === "idle");
    expect(JSON.stringify(done.live.messages.find((m) => m.role === "tool")?.result)).toContain(
      "denied",
    );
  });

  it("lets exactly one of two concurrent conflicting decisions win", async () => {
    const { id, callId } = await awaitingApproval();
    const results = await Promise.all([decide(id, callId, true), decide(id, callId, false)]);
    const statuses = results.map((r) => r.status).sort();
    for (const r of results) await r.body?.cancel();
    expect(statuses).toEqual([200, 409]);
    const decisions = (await sessionEvents(id)).filter((e) => e.type === "tool/approval-decided");
    expect(decisions).toHaveLength(1);
  });

  it("answers 404 for an unknown tool call and 409 for one that is not pending", async () => {
    const unknownSession = await createSession();
    const unknown = await decide(unknownSession, "nope", true);
    expect(unknown.status).toBe(404);
    await unknown.body?.cancel();
    const id = await createSession();
    await sendMessage(id, 'call echo {"text":"no approval needed"}');
    const done = await waitForSession(
      id,
      (s) => s.live.status === "idle" && s.live.messages.length === 4,
    );
    expect(done.live.messages[2]).toMatchObject({ role: "tool", isError: false });
    const events = await sessionEvents(id);
    const callId = (
      events.find((e) => e.type === "tool/call-requested")!.payload as { toolCallId: string }
    ).toolCallId;
    const notPending = await decide(id, callId, true);
    expect(notPending.status).toBe(409);
    await notPending.body?.cancel();
  });

  it("cancels pending approvals with the turn", async () => {
    const { id, callId } = await awaitingApproval("c");
    const cancel = await post(`/v1/sessions/${id}/cancel`);
    expect(cancel.status).toBe(202);
    await cancel.body?.cancel();
    const cancelled = await waitForSession(
      id,
      (s) => s.status === "cancelled" && s.live.status === "cancelled",
    );
    expect(cancelled.live.pendingApprovals).toEqual([]);
    const late = await decide(id, callId, true);
    expect(late.status).toBe(409);
    await late.body?.cancel();
    const events = await sessionEvents(id);
    expect(events.some((e) => e.type === "tool/call-completed")).toBe(false);
  });
});

describe("cancel and delete", () => {
  it("stops the in-flight model request and discards its late output", async () => {
    const id = await createSession();
    // 60 words at 25 ms each: the reply would stream for about 1.5 s if nothing stopped it.
    const first = Array.from({ length: 60 }, (_, i) => `interrupted${i}`).join(" ");
    await sendMessage(id, first);
    await waitFor(async () =>
      (await sessionEvents(id)).some((e) => e.type === "model/delta-produced"),
    );
    const cancel = await post(`/v1/sessions/${id}/cancel`, { reason: "changed my mind" });
    expect(cancel.status).toBe(202);
    const { offset: cancelOffset } = (await cancel.json()) as Cancelled;
    const view = await waitForSession(id, (s) => s.live.status === "cancelled");
    expect(view.live.messages.filter((m) => m.role === "assistant")).toHaveLength(0);
    // The model processor has seen the cancel (its cursor is past it).
    const modelKey = subscriptionKeyFor("model", "SESSIONS", `default:${id}`);
    await waitFor(async () => {
      const subs = await sessionStream(id).listSubscriptions();
      return (subs.find((sub) => sub.key === modelKey)?.cursor ?? 0) >= cancelOffset;
    });

    // The session takes new messages after a cancel. This reply is longer than the cancelled
    // one and starts later, so by its end the cancelled reply would have finished too: its
    // completion is the marker to wait for instead of a fixed sleep.
    const second = Array.from({ length: 80 }, (_, i) => `again${i}`).join(" ");
    await sendMessage(id, second);
    const done = await waitForSession(
      id,
      (s) => s.live.status === "idle" && s.live.messages.length === 3,
    );
    expect(done.live.messages.filter((m) => m.role === "assistant")).toEqual([
      expect.objectContaining({ content: `You said: ${second}` }),
    ]);

    const events = await sessionEvents(id);
    const requests = events.filter((e) => e.type === "model/request-requested");
    expect(requests).toHaveLength(2);
    const [cancelled, next] = requests.map((e) => (e.payload as { requestId: string }).requestId);
    const of = (type: string, requestId: string) =>
      events.filter(
        (e) => e.type === type && (e.payload as { requestId: string }).requestId === requestId,
      );
    // The cancelled request was aborted: it never completed (nor failed), and its deltas
    // stopped at the cancel, well before the next request was even asked for.
    expect(of("model/request-completed", cancelled!), "the cancelled request completed").toEqual(
      [],
    );
    expect(of("model/request-failed", cancelled!)).toEqual([]);
    const lateDeltas = of("model/delta-produced", cancelled!).filter(
      (e) => e.offset > requests[1]!.offset,
    );
    expect(lateDeltas.length, "deltas of the cancelled request after the next request").toBe(0);
    // A full reply ("You said: " and the 60 words) would be 62 deltas.
    expect(of("model/delta-produced", cancelled!).length).toBeLessThan(62);
    expect(of("model/request-completed", next!)).toHaveLength(1);
    expect(events.filter((e) => e.type === "turn/cancelled")).toHaveLength(1);
    expect(duplicateKeys(events)).toEqual([]);
  });

  it("deletes a session: 204, stream closed, gone from the list", async () => {
    const id = await createSession({ title: "to delete" });
    const del = await api(`/v1/sessions/${id}`, { method: "DELETE" });
    expect(del.status).toBe(204);
    const head = await api(`/v1/stream/sessions/${id}`, { method: "HEAD" });
    expect(head.headers.get("stream-closed")).toBe("true");
    const get = await api(`/v1/sessions/${id}`);
    expect(get.status).toBe(404);
    await get.body?.cancel();
    const list = (await (await api("/v1/sessions?limit=100")).json()) as SessionList;
    expect(list.sessions.map((s) => s.id)).not.toContain(id);
    const send = await post(`/v1/sessions/${id}/messages`, { content: "anyone?" });
    expect([404, 409]).toContain(send.status);
    await send.body?.cancel();
  });
});

describe("the events endpoint", () => {
  it("serves Durable Streams reads of the session stream", async () => {
    const id = await createSession();
    await sendMessage(id, "hello");
    await waitForSession(id, (s) => s.live.status === "idle" && s.live.messages.length === 2);
    const res = await api(`/v1/sessions/${id}/events?offset=-1`);
    expect(res.status).toBe(200);
    const events = (await res.json()) as { type: string }[];
    expect(events.map((e) => e.type)).toContain("turn/completed");
    const bad = await api(`/v1/sessions/${id}/events?offset=banana`);
    expect(bad.status).toBe(400);
    await bad.body?.cancel();
  });

  it("serves EventSource SSE with offsets as ids and resumes after Last-Event-ID", async () => {
    const id = await createSession();
    await sendMessage(id, "hello");
    await waitForSession(id, (s) => s.live.status === "idle" && s.live.messages.length === 2);
    const all = await sessionEvents(id);
    const res = await api(`/v1/sessions/${id}/events`, {
      headers: { accept: "text/event-stream", "last-event-id": String(all.length - 2) },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const frames = await parseSse(res, (seen) => seen.length >= 2);
    expect(frames.map((f) => Number(f.id))).toEqual([all.length - 1, all.length]);
    expect(JSON.parse(frames[1]!.data)).toMatchObject({
      offset: all.length,
      type: all.at(-1)!.type,
    });
    const bad = await api(`/v1/sessions/${id}/events`, {
      headers: { accept: "text/event-stream", "last-event-id": "x1" },
    });
    expect(bad.status).toBe(400);
    await bad.body?.cancel();
  });
});

describe("rebuilding the index", () => {
  it("rewrites a session's D1 row from its stream", async () => {
    const id = await createSession({ title: "reindex me" });
    await sendMessage(id, "hello");
    await waitForSession(id, (s) => s.status === "idle" && s.live.messages.length === 2);
    // The index processor has consumed the whole stream, so no late write brings the row back.
    const indexKey = subscriptionKeyFor("index", "SESSIONS", `default:${id}`);
    const lastOffset = (await sessionEvents(id)).at(-1)!.offset;
    await waitFor(async () => {
      const subs = await sessionStream(id).listSubscriptions();
      return (subs.find((sub) => sub.key === indexKey)?.cursor ?? 0) >= lastOffset;
    });
    await env.DB.prepare("DELETE FROM sessions WHERE id = ?").bind(id).run();
    const gone = await api(`/v1/sessions/${id}`);
    expect(gone.status).toBe(404);
    await gone.body?.cancel();
    const res = await post(`/admin/tenants/default/sessions/${id}/reindex`, undefined, {
      authorization: "Bearer dev-admin-token",
    });
    expect(res.status).toBe(202);
    await res.body?.cancel();
    // 202: the row is rebuilt in the background, so the session reads as 404 until it is.
    let rebuilt: SessionView | null = null;
    await waitFor(async () => {
      rebuilt = await getSessionOrNull(id);
      return rebuilt?.status === "idle";
    });
    expect(rebuilt).toMatchObject({ title: "reindex me", status: "idle", pendingApprovalCount: 0 });
  });
});

describe("session streams over the stream API", () => {
  it("can be read but not written, closed or deleted", async () => {
    const id = await createSession();
    const before = (await sessionEvents(id)).length;
    const attempts: [string, RequestInit][] = [
      [
        "append",
        {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: '{"type":"model/request-completed","payload":{}}',
        },
      ],
      ["close", { method: "POST", headers: { "stream-closed": "true" } }],
      ["delete", { method: "DELETE" }],
      ["re-create", { method: "PUT", headers: { "content-type": "application/json" } }],
    ];
    for (const [what, init] of attempts) {
      const res = await api(`/v1/stream/sessions/${id}`, init);
      expect(res.status, what).toBe(405);
      expect(res.headers.get("allow")).toBe("GET, HEAD");
      await res.body?.cancel();
    }
    const read = await api(`/v1/stream/sessions/${id}?offset=-1`);
    expect(read.status).toBe(200);
    await read.body?.cancel();
    expect((await sessionEvents(id)).length).toBe(before);
  });
});
