/**
 * The shipped typed client (src/client) against the app inside workerd: every call, the
 * resumable event iterator (including connections cut mid-stream) and the reducer fed by it.
 */
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import {
  createSessionClient,
  initialSessionView,
  reduceSessionView,
  SessionApiError,
  type SessionClient,
  type SessionEvent,
  type SessionView,
} from "../../src/client";
import { toClientEvent } from "../../src/sessions/client-view";
import { sessionEvents } from "../support/session-api";

/** What a client may see of a session: the stored stream through the server's client view. */
const clientView = async (id: string) =>
  (await sessionEvents(id, "dev")).flatMap((e) => {
    const event = toClientEvent(e);
    return event ? [event] : [];
  });

const BASE = "http://client.test";
const KEY = "das_dev_local_development_key_0000";
const inProcess = (request: Request) => exports.default.fetch(request);
const client = createSessionClient({ baseUrl: BASE, token: KEY, fetch: inProcess });

/** Reads events into a view until `done(view)` holds; returns the view and the events seen. */
async function follow(
  c: SessionClient,
  id: string,
  done: (view: SessionView) => boolean,
  after = 0,
  view: SessionView = initialSessionView,
): Promise<{ view: SessionView; events: SessionEvent[] }> {
  const events: SessionEvent[] = [];
  let v = view;
  for await (const event of c.events(id, { after })) {
    events.push(event);
    v = reduceSessionView(v, event);
    if (done(v)) break;
  }
  return { view: v, events };
}

describe("typed client", () => {
  it("creates, lists, sends, streams a reply and deletes", async () => {
    const session = await client.create({ title: "client test" });
    expect(session).toMatchObject({ status: "idle" });
    expect(session.id).toMatch(/^[0-9A-Z]{26}$/);
    const sent = await client.send(session.id, "hello there");
    expect(sent).toMatchObject({ queued: false });
    expect(typeof sent.offset).toBe("number");

    const { view } = await follow(
      client,
      session.id,
      (v) => v.status === "idle" && v.turnId === null && v.messages.length >= 2,
    );
    expect(view.messages.map((m) => [m.kind, "text" in m ? m.text : m.toolName])).toEqual([
      ["user", "hello there"],
      ["assistant", "You said: hello there"],
    ]);

    const listed = await client.list({ limit: 100 });
    expect(listed.sessions.map((s) => s.id)).toContain(session.id);
    const detail = await client.get(session.id);
    expect(detail.live.messages.at(-1)).toMatchObject({ role: "assistant" });

    // Deleting closes the stream: a reader sees the end and its loop finishes by itself.
    const reader = follow(client, session.id, () => false, view.lastOffset, view);
    await client.delete(session.id);
    const after = await reader;
    expect(after.view.status).toBe("deleted");
    const missing = await client.get(session.id).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(SessionApiError);
    expect(missing).toMatchObject({ status: 404, code: "not_found" });
  });

  it("approves a tool call the model asked for", async () => {
    const { id } = await client.create();
    await client.send(id, 'call notes_write {"key":"k","text":"t"}');
    const waiting = await follow(client, id, (v) => v.pendingApprovals.length > 0);
    const [pending] = waiting.view.pendingApprovals;
    expect(pending).toMatchObject({ toolName: "notes_write", args: { key: "k", text: "t" } });
    const decision = await client.decide(id, pending!.toolCallId, true);
    expect(decision).toMatchObject({ toolCallId: pending!.toolCallId, approved: true });
    const again = await client.decide(id, pending!.toolCallId, false).catch((e: unknown) => e);
    expect(again).toMatchObject({ status: 409, code: "conflict" });

    const done = await follow(
      client,
      id,
      (v) => v.status === "idle" && v.turnId === null,
      waiting.view.lastOffset,
      waiting.view,
    );
    const tool = done.view.messages.find((m) => m.kind === "tool");
    expect(tool).toMatchObject({ status: "completed", toolName: "notes_write" });
    expect(done.view.messages.at(-1)).toMatchObject({ kind: "assistant", status: "completed" });
  });

  it("resumes after the connection drops mid-stream: no gap, no duplicate", async () => {
    const { id } = await client.create();
    await client.send(id, "one two three four five six seven eight");
    await follow(client, id, (v) => v.status === "idle" && v.messages.length >= 2);

    // Every connection breaks right after its first event.
    const lastEventIds: (string | null)[] = [];
    const flaky = async (request: Request) => {
      lastEventIds.push(request.headers.get("last-event-id"));
      const response = await inProcess(request);
      if (!response.body) return response;
      let text = "";
      const cut = new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          text += new TextDecoder().decode(chunk);
          const id = text.indexOf("id:");
          const end = id < 0 ? -1 : text.indexOf("\n\n", id);
          if (end < 0) return;
          controller.enqueue(new TextEncoder().encode(text.slice(0, end + 2)));
          throw new Error("connection lost");
        },
      });
      return new Response(response.body.pipeThrough(cut), response);
    };
    const c = createSessionClient({ baseUrl: BASE, token: KEY, fetch: flaky });
    const stored = await clientView(id);
    const seen: number[] = [];
    for await (const event of c.events(id, { minRetryMs: 1 })) {
      seen.push(event.offset);
      if (event.offset >= stored.at(-1)!.offset) break;
    }
    expect(seen).toEqual(stored.map((e) => e.offset));
    expect(lastEventIds.length).toBe(seen.length); // one event per connection
    // Each reconnect resumed right after an event it had yielded, always further on.
    const resumedAfter = lastEventIds.slice(1).map(Number);
    for (const offset of resumedAfter) expect(seen).toContain(offset);
    expect([...resumedAfter].sort((a, b) => a - b)).toEqual(resumedAfter);
  });

  it("a resumed read starts after the given offset", async () => {
    const { id } = await client.create();
    await client.send(id, "hi");
    await follow(client, id, (v) => v.status === "idle" && v.messages.length >= 2);
    const stored = await clientView(id);
    const from = stored[2]!.offset;
    const rest: number[] = [];
    for await (const event of client.events(id, { after: from })) {
      rest.push(event.offset);
      if (event.offset === stored.at(-1)!.offset) break;
    }
    expect(rest).toEqual(stored.filter((e) => e.offset > from).map((e) => e.offset));
  });

  it("cancels a turn; errors are SessionApiErrors that end the iteration", async () => {
    const { id } = await client.create();
    const cancelled = await client.cancel(id, "changed my mind");
    expect(typeof cancelled.offset).toBe("number");

    const bad = createSessionClient({ baseUrl: BASE, token: "das_wrong_key", fetch: inProcess });
    await expect(bad.list()).rejects.toMatchObject({ status: 401, code: "unauthorized" });
    const events = bad.events(id);
    await expect(events.next()).rejects.toMatchObject({ status: 401 });

    const unknown = "01J00000000000000000000000";
    await expect(client.events(unknown).next()).rejects.toMatchObject({ status: 404 });
    await expect(client.send(id, "")).rejects.toMatchObject({
      status: 400,
      code: "validation_failed",
    });
  });

  it("a browser-style client with a minted session token: its session, its scopes", async () => {
    const { id } = await client.create();
    const minted = await client.mintToken(id, { scopes: ["read", "write"], ttlSeconds: 60 });
    expect(minted.scopes).toEqual(["read", "write"]);
    const browser = createSessionClient({ baseUrl: BASE, token: minted.token, fetch: inProcess });
    await browser.send(id, "from the page");
    const { view } = await follow(
      browser,
      id,
      (v) => v.status === "idle" && v.messages.length >= 2,
    );
    expect(view.messages.at(-1)).toMatchObject({
      kind: "assistant",
      text: "You said: from the page",
    });
    // Only what its scopes and session allow.
    await expect(browser.create()).rejects.toMatchObject({ status: 403 });
    await expect(browser.decide(id, "x", true)).rejects.toMatchObject({ status: 403 });
    const other = await client.create();
    await expect(browser.get(other.id)).rejects.toMatchObject({ status: 404 });
    // Revoked: the reader's next request fails for good, with no retry loop.
    await client.revokeTokens(id);
    await expect(browser.events(id, { after: view.lastOffset }).next()).rejects.toMatchObject({
      status: 401,
    });
  });

  it("a token provider is asked again when the API refuses an expired or revoked token", async () => {
    const { id } = await client.create();
    const stale = (await client.mintToken(id, { scopes: ["read"], ttlSeconds: 60 })).token;
    await client.revokeTokens(id);
    const fresh = (await client.mintToken(id, { scopes: ["read"], ttlSeconds: 60 })).token;
    const handedOut: string[] = [];
    const reader = createSessionClient({
      baseUrl: BASE,
      // The page's cache holds the stale token until the API refuses it.
      token: () => {
        handedOut.push(handedOut.length === 0 ? stale : fresh);
        return handedOut.at(-1)!;
      },
      fetch: inProcess,
    }).events(id);
    const first = await reader.next();
    await reader.return();
    expect(first.value).toMatchObject({ type: "session/created" });
    expect(handedOut).toEqual([stale, fresh]);
  });
});
