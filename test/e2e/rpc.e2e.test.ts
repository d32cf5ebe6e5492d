/**
 * The capnweb face (`/v1/rpc`) from Node against `wrangler dev`: in-band authentication,
 * a session created and its first message sent in one HTTP round trip (pipelining), live
 * events pushed to a callback, a dropped WebSocket resumed with no gap and no duplicate, and
 * idle connections closed by the server.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSessionClient, type SessionEvent } from "../../src/client";
import { LiveRpc, rpcBatch } from "../../src/client/rpc";
import { type DevServer, startDevServer } from "../support/dev-server";

const KEY = "das_dev_local_development_key_0000";
const IDLE_MS = 2_000;
let server: DevServer;

beforeAll(async () => {
  server = await startDevServer({
    migrate: true,
    vars: {
      SCRIPTED_MODEL_DELAY_MS: "30",
      RPC_IDLE_TIMEOUT_MS: String(IDLE_MS),
      CORS_ORIGINS: "https://app.example.com",
      RPC_MAX_SUBSCRIPTIONS: "2",
    },
  });
});
afterAll(async () => {
  await server?.stop();
});

const rpcUrl = () => `${server.url}/v1/rpc`;
const server_ = () => server;

/** Every event of a finished turn, read over HTTP with the typed client (the reference). */
async function httpEvents(id: string, until: (e: SessionEvent) => boolean) {
  const client = createSessionClient({ baseUrl: server.url, token: KEY });
  const out: SessionEvent[] = [];
  for await (const event of client.events(id)) {
    out.push(event);
    if (until(event)) break;
  }
  return out;
}

describe("capnweb /v1/rpc", () => {
  it("rejects a bad credential in-band with a 401", async () => {
    const api = rpcBatch(rpcUrl(), "das_not_a_key");
    await expect(api.ping()).rejects.toMatchObject({ status: 401, code: "unauthorized" });
  });

  it("a page's Origin must be on the allowlist (CORS does not guard WebSockets or simple POSTs)", async () => {
    const post = (origin: string) =>
      fetch(rpcUrl(), { method: "POST", headers: { origin }, body: "" });
    const refused = await post("https://evil.example.com");
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ error: { code: "origin_not_allowed" } });
    const allowed = await post("https://app.example.com");
    await allowed.body?.cancel();
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
  });

  it("a session token authenticates in-band and reaches only its session and scopes", async () => {
    const server = createSessionClient({ baseUrl: server_().url, token: KEY });
    const mine = await server.create();
    const other = await server.create();
    const { token } = await server.mintToken(mine.id, {
      scopes: ["read", "write"],
      ttlSeconds: 60,
    });
    const api = rpcBatch(rpcUrl(), token);
    const [sent, created, foreign, decided] = await Promise.allSettled([
      api.sendMessage(mine.id, "hi from a token"),
      api.createSession({}),
      api.getSession(other.id),
      api.decide(mine.id, "call-1", true),
    ]);
    expect(sent).toMatchObject({ status: "fulfilled", value: { queued: false } });
    expect(created).toMatchObject({ status: "rejected", reason: { status: 403 } });
    expect(foreign).toMatchObject({ status: "rejected", reason: { status: 404 } });
    expect(decided).toMatchObject({ status: "rejected", reason: { status: 403 } });
    const forged = `${token.slice(0, -4)}AAAA`;
    await expect(rpcBatch(rpcUrl(), forged).ping()).rejects.toMatchObject({ status: 401 });
  });

  it("creates a session and sends its first message in one HTTP round trip", async () => {
    const realFetch = globalThis.fetch;
    const posts: string[] = [];
    globalThis.fetch = (input, init) => {
      posts.push(String(input instanceof Request ? input.url : input));
      return realFetch(input, init);
    };
    try {
      const api = rpcBatch(rpcUrl(), KEY);
      const created = api.createSession({ title: "pipelined" });
      const sent = api.sendMessage(created.id, "hello pipeline");
      const [session, message] = await Promise.all([created, sent]);
      expect(posts).toEqual([rpcUrl()]);
      expect(session.id).toMatch(/^[0-9A-Z]{26}$/);
      expect(message).toMatchObject({ queued: false });
      const events = await httpEvents(session.id, (e) => e.type === "turn/completed");
      expect(events.at(-1)?.type).toBe("turn/completed");
      // The reply is the turn's model/request-completed (turn/completed references it).
      const reply = events.filter((e) => e.type === "model/request-completed").at(-1);
      expect(reply?.payload).toMatchObject({ text: "You said: hello pipeline" });
    } finally {
      globalThis.fetch = realFetch;
    }
  });

  it("pushes live events to a callback and resumes after a dropped socket: no gap, no duplicate", async () => {
    const sockets: WebSocket[] = [];
    const disconnects: unknown[] = [];
    const live = new LiveRpc({
      url: rpcUrl(),
      credential: KEY,
      heartbeatMs: 500,
      minRetryMs: 50,
      webSocket: (url) => {
        const socket = new WebSocket(url);
        sockets.push(socket);
        return socket;
      },
      onDisconnect: (error) => disconnects.push(error),
    });
    try {
      const api = await live.api();
      const session = await api.createSession({ title: "live" });
      const received: SessionEvent[] = [];
      let dropped = false;
      const finished = new Promise<void>((resolve) => {
        live.follow(session.id, 0, (event) => {
          received.push(event);
          // Drop the connection in the middle of the reply.
          if (!dropped && event.type === "model/delta-produced") {
            dropped = true;
            sockets.at(-1)!.close();
          }
          if (event.type === "turn/completed") resolve();
        });
      });
      await api.sendMessage(
        session.id,
        "one two three four five six seven eight nine ten eleven twelve",
      );
      await finished;
      expect(dropped).toBe(true);
      expect(disconnects.length).toBeGreaterThan(0);
      expect(sockets.length).toBeGreaterThan(1);
      const reference = await httpEvents(session.id, (e) => e.type === "turn/completed");
      expect(received.map((e) => e.offset)).toEqual(reference.map((e) => e.offset));
      expect(received.map((e) => e.type)).toEqual(reference.map((e) => e.type));
    } finally {
      live.close();
    }
  });

  it("a follow on an unknown session fails with 404 instead of retrying forever", async () => {
    const live = new LiveRpc({ url: rpcUrl(), credential: KEY, heartbeatMs: 500 });
    try {
      const follow = live.follow("01J00000000000000000000000", 0, () => {});
      await expect(follow.done).rejects.toMatchObject({ status: 404 });
    } finally {
      live.close();
    }
  });

  it("bounds live subscriptions per connection, and offers them only over WebSocket", async () => {
    const api = rpcBatch(rpcUrl(), KEY);
    const session = await api.createSession({});
    const overHttp = rpcBatch(rpcUrl(), KEY).subscribe(session.id, 0, () => {});
    await expect(overHttp.done()).rejects.toMatchObject({ status: 400 });

    const live = new LiveRpc({ url: rpcUrl(), credential: KEY, heartbeatMs: 500 });
    try {
      const ws = await live.api();
      const subs = [0, 1, 2].map(() => ws.subscribe(session.id, 0, () => {}));
      const settled = await Promise.allSettled(subs.map((sub) => sub.lastOffset()));
      expect(settled.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "rejected"]);
      expect(settled[2]).toMatchObject({ reason: { status: 429, code: "too_many_subscriptions" } });
      // Closing one frees its place.
      await subs[0]!.close();
      await subs[0]!.done();
      const again = ws.subscribe(session.id, 0, () => {});
      expect(typeof (await again.lastOffset())).toBe("number");
    } finally {
      live.close();
    }
  });

  it("closes a connection that stays silent past the idle timeout", async () => {
    const socket = new WebSocket(rpcUrl().replace(/^http/, "ws"));
    await new Promise((resolve, reject) => {
      socket.addEventListener("open", resolve);
      socket.addEventListener("error", reject);
    });
    const started = Date.now();
    const closed = await new Promise<CloseEvent>((resolve) =>
      socket.addEventListener("close", resolve),
    );
    expect(closed.code).toBe(4408);
    expect(closed.reason).toBe("idle timeout");
    expect(Date.now() - started).toBeGreaterThanOrEqual(IDLE_MS - 200);
  });
});
