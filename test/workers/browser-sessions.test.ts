/**
 * The session API as a browser meets it: scoped session tokens (Bearer and ?token=, scopes,
 * wrong session / tenant, forged, expired, revoked), CORS with and without an allowlist, one
 * offset vocabulary across every read mode, and the client view (no plumbing, no internal
 * payloads; the full view only for API keys).
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { sign } from "hono/jwt";
import { describe, expect, it } from "vitest";
import { mintSessionToken } from "../../src/auth/session-tokens";
import { createApp } from "../../src/http/app";
import { encodeOffset } from "../../src/streams/offsets";
import { evictDurableObject } from "../support/rpc";
import {
  api,
  createSession,
  getSession,
  post,
  sendMessage,
  sessionAgent,
  waitForSession,
} from "../support/session-api";
import { parseSse } from "../support/sse";

const SECRET = env.SESSION_TOKEN_SECRET!;
const ADMIN = { authorization: "Bearer dev-admin-token", "content-type": "application/json" };
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

type Event = { offset: number; type: string; payload: Record<string, unknown> };

async function errorCode(res: Response): Promise<string> {
  expect(res.headers.get("content-type")).toContain("application/json");
  return ((await res.json()) as { error: { code: string } }).error.code;
}

async function expectStatus(res: Response, status: number, code?: string) {
  expect(res.status).toBe(status);
  if (code !== undefined) expect(await errorCode(res)).toBe(code);
  else await res.body?.cancel();
}

async function mint(
  id: string,
  scopes: string[],
  ttlSeconds?: number,
  headers: Record<string, string> = {},
) {
  const res = await post(`/v1/sessions/${id}/tokens`, { scopes, ttlSeconds }, headers);
  expect(res.status).toBe(201);
  return (await res.json()) as { token: string; expiresAt: string; scopes: string[] };
}

/** A session whose first turn has completed (so its stream holds plumbing and model events). */
async function answeredSession(system = "") {
  const id = await createSession({ system });
  const sent = await sendMessage(id, "hello there");
  await waitForSession(id, (s) => s.live.status === "idle" && s.live.messages.length === 2);
  return { id, sent };
}

async function readEvents(path: string, init?: RequestInit): Promise<Event[]> {
  const res = await api(path, init);
  expect(res.status).toBe(200);
  return (await res.json()) as Event[];
}

describe("session tokens", () => {
  it("mints scoped, short-lived tokens with an API key only", async () => {
    const id = await createSession();
    const before = Date.now();
    const minted = await mint(id, ["read", "write"], 120);
    expect(minted.scopes).toEqual(["read", "write"]);
    const expires = Date.parse(minted.expiresAt);
    expect(expires).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 120_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 121_000);
    for (const bad of [
      { scopes: [] },
      { scopes: ["admin"] },
      { scopes: ["read", "read"] },
      { scopes: ["read"], ttlSeconds: 3601 },
      { scopes: ["read"], ttlSeconds: 0 },
      { scopes: ["read"], extra: 1 },
    ]) {
      await expectStatus(await post(`/v1/sessions/${id}/tokens`, bad), 400, "validation_failed");
    }
    await expectStatus(
      await post("/v1/sessions/01ARZ3NDEKTSV4RRFFQ69G5FAV/tokens", { scopes: ["read"] }),
      404,
      "not_found",
    );
    // A token cannot mint (or revoke) tokens.
    const headers = bearer(minted.token);
    await expectStatus(
      await post(`/v1/sessions/${id}/tokens`, { scopes: ["read"] }, headers),
      403,
      "forbidden",
    );
    await expectStatus(
      await post(`/v1/sessions/${id}/tokens/revoke`, undefined, headers),
      403,
      "forbidden",
    );
  });

  it("answers 503 when no signing secret is configured", async () => {
    const id = await createSession();
    const ctx = createExecutionContext();
    const res = await createApp().fetch(
      new Request(`http://local/v1/sessions/${id}/tokens`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ scopes: ["read"] }),
      }),
      { ...env, SESSION_TOKEN_SECRET: undefined },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    await expectStatus(res, 503, "tokens_not_configured");
  });

  it("lets each scope reach exactly its routes", async () => {
    const id = await createSession();
    const read = bearer((await mint(id, ["read"])).token);
    const write = bearer((await mint(id, ["write"])).token);
    const approve = bearer((await mint(id, ["approve"])).token);

    expect((await api(`/v1/sessions/${id}`, { headers: read })).status).toBe(200);
    await expectStatus(await api(`/v1/sessions/${id}/events?offset=-1`, { headers: read }), 200);
    await expectStatus(await api(`/v1/sessions/${id}`, { headers: write }), 403, "forbidden");
    await expectStatus(
      await api(`/v1/sessions/${id}/events?offset=-1`, { headers: approve }),
      403,
      "forbidden",
    );

    await expectStatus(
      await post(`/v1/sessions/${id}/messages`, { content: "x" }, read),
      403,
      "forbidden",
    );
    await expectStatus(
      await post(`/v1/sessions/${id}/cancel`, undefined, approve),
      403,
      "forbidden",
    );
    await expectStatus(
      await post(
        `/v1/sessions/${id}/messages`,
        { content: 'call notes_write {"key":"k","text":"t"}' },
        write,
      ),
      202,
    );
    const waiting = await waitForSession(id, (s) => s.live.pendingApprovals.length === 1);
    const toolCallId = waiting.live.pendingApprovals[0]!.toolCallId;
    const decide = (headers: Record<string, string>) =>
      post(`/v1/sessions/${id}/tool-calls/${toolCallId}/decision`, { approved: true }, headers);
    await expectStatus(await decide(write), 403, "forbidden");
    await expectStatus(await decide(read), 403, "forbidden");
    await expectStatus(await decide(approve), 200);
    await waitForSession(id, (s) => s.live.status === "idle");
    await expectStatus(await post(`/v1/sessions/${id}/cancel`, undefined, write), 202);
    // No scope covers deleting.
    await expectStatus(
      await api(`/v1/sessions/${id}`, { method: "DELETE", headers: write }),
      403,
      "forbidden",
    );
  });

  it("refuses tokens on tenant-level routes", async () => {
    const id = await createSession();
    const all = bearer((await mint(id, ["read", "write", "approve"])).token);
    const json = { ...all, "content-type": "application/json" };
    const cases: [string, RequestInit][] = [
      ["/v1/sessions", { headers: all }],
      ["/v1/sessions", { method: "POST", headers: json, body: "{}" }],
      ["/v1/subscriptions?stream=/a", { headers: all }],
      [`/v1/stream/sessions/${id}?offset=-1`, { headers: all }],
      ["/v1/stream/some/stream", { method: "PUT", headers: json }],
    ];
    for (const [path, init] of cases) {
      const res = await api(path, init);
      expect(res.status, path).toBe(403);
      expect(await errorCode(res)).toBe("forbidden");
    }
  });

  it("takes ?token= on the event route only, and never an API key there", async () => {
    const { id } = await answeredSession();
    const { token } = await mint(id, ["read"]);
    const res = await api(`/v1/sessions/${id}/events?token=${token}`, {
      headers: { accept: "text/event-stream" },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const frames = await parseSse(res, (seen) =>
      seen.some((f) => f.data.includes("turn/completed")),
    );
    expect(frames.every((f) => f.event === undefined && f.id !== undefined)).toBe(true);
    // Catch-up JSON works with ?token= too.
    await expectStatus(await api(`/v1/sessions/${id}/events?offset=-1&token=${token}`), 200);
    await expectStatus(await api(`/v1/sessions/${id}?token=${token}`), 400, "bad_request");
    await expectStatus(
      await api(`/v1/sessions/${id}/events?token=das_dev_local_development_key_0000`),
      401,
      "unauthorized",
    );
    await expectStatus(
      await api(`/v1/sessions/${id}/events?token=${token}`, { headers: bearer(token) }),
      400,
      "bad_request",
    );
  });

  it("answers 401 to forged, expired and malformed tokens", async () => {
    const id = await createSession();
    const { token } = await mint(id, ["read"]);
    const [header, payload, signature] = token.split(".");
    const tampered = JSON.parse(atob(payload!.replace(/-/g, "+").replace(/_/g, "/"))) as {
      scp: string[];
    };
    tampered.scp = ["read", "write", "approve"];
    const forgedPayload = btoa(JSON.stringify(tampered))
      .replace(/\+/g, "-")
      .replace(/\//g, "_")
      .replace(/=+$/, "");
    const expired = await mintSessionToken(
      SECRET,
      { tenant: "default", sessionId: id, scopes: ["read"], ttlSeconds: 10, generation: 0 },
      Date.now() - 60_000,
    );
    const otherSecret = await mintSessionToken("another-secret-0123456789abcdef-0000", {
      tenant: "default",
      sessionId: id,
      scopes: ["read"],
      ttlSeconds: 60,
      generation: 0,
    });
    const unsigned = `${btoa(JSON.stringify({ alg: "none", typ: "JWT" })).replace(/=+$/, "")}.${payload}.`;
    for (const [name, bad] of [
      ["payload changed", `${header}.${forgedPayload}.${signature}`],
      ["signature changed", `${header}.${payload}.${signature!.slice(0, -2)}AA`],
      ["other secret", otherSecret.token],
      ["expired", expired.token],
      ["malformed", "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln"],
      ["alg none", unsigned],
    ] as const) {
      const res = await api(`/v1/sessions/${id}`, { headers: bearer(bad) });
      expect(res.status, name).toBe(401);
      expect(res.headers.get("www-authenticate"), name).toContain('error="invalid_token"');
      const body = await res.text();
      expect(body, name).not.toContain(bad); // errors never echo the token
    }
    const res = await api(`/v1/sessions/${id}`, { headers: bearer(expired.token) });
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/expired/);
  });

  it("reads another session, or another tenant's, as 404", async () => {
    const a = await createSession();
    const b = await createSession();
    const tokenA = bearer((await mint(a, ["read", "write"])).token);
    await expectStatus(await api(`/v1/sessions/${b}`, { headers: tokenA }), 404, "not_found");
    await expectStatus(
      await post(`/v1/sessions/${b}/messages`, { content: "x" }, tokenA),
      404,
      "not_found",
    );

    // A token of another tenant (for its own session) on this tenant's session.
    const tenant = `t-${crypto.randomUUID().slice(0, 8)}`;
    expect((await post("/admin/tenants", { id: tenant, name: tenant }, ADMIN)).status).toBe(201);
    const keyRes = await post(`/admin/tenants/${tenant}/keys`, { name: "web" }, ADMIN);
    const key = bearer(((await keyRes.json()) as { key: string }).key);
    const created = await post("/v1/sessions", {}, key);
    const theirs = ((await created.json()) as { session: { id: string } }).session.id;
    const theirToken = bearer((await mint(theirs, ["read"], 60, key)).token);
    expect((await api(`/v1/sessions/${theirs}`, { headers: theirToken })).status).toBe(200);
    await expectStatus(await api(`/v1/sessions/${a}`, { headers: theirToken }), 404, "not_found");
    // Even a validly signed token naming session A under the other tenant finds nothing.
    const crossed = await mintSessionToken(SECRET, {
      tenant,
      sessionId: a,
      scopes: ["read"],
      ttlSeconds: 60,
      generation: 0,
    });
    await expectStatus(
      await api(`/v1/sessions/${a}`, { headers: bearer(crossed.token) }),
      404,
      "not_found",
    );
  });

  it("revokes every token of a session, and ends them when the session is deleted", async () => {
    const id = await createSession();
    const old = bearer((await mint(id, ["read"])).token);
    expect((await api(`/v1/sessions/${id}`, { headers: old })).status).toBe(200);
    await expectStatus(await post(`/v1/sessions/${id}/tokens/revoke`), 204);
    const res = await api(`/v1/sessions/${id}`, { headers: old });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/revoked/);
    const fresh = bearer((await mint(id, ["read"])).token);
    expect((await api(`/v1/sessions/${id}`, { headers: fresh })).status).toBe(200);
    // A fresh instance reads the generation from storage: the revocation holds after eviction.
    await evictDurableObject(sessionAgent(id));
    await expectStatus(await api(`/v1/sessions/${id}`, { headers: old }), 401);
    expect((await api(`/v1/sessions/${id}`, { headers: fresh })).status).toBe(200);
    await expectStatus(await post(`/v1/sessions/${id}/tokens/revoke`), 204);
    await expectStatus(await api(`/v1/sessions/${id}`, { headers: fresh }), 401);

    await expectStatus(await api(`/v1/sessions/${id}`, { method: "DELETE" }), 204);
    await expectStatus(
      await api(`/v1/sessions/${id}/events?offset=-1`, { headers: fresh }),
      404,
      "not_found",
    );
  });

  it("does not accept a JWT signed for another purpose with the same secret", async () => {
    const id = await createSession();
    const now = Math.floor(Date.now() / 1000);
    const other = await sign(
      { ten: "default", sid: id, scp: ["read"], gen: 0, jti: "x", iat: now, exp: now + 60 },
      SECRET,
      "HS256",
    );
    await expectStatus(await api(`/v1/sessions/${id}`, { headers: bearer(other) }), 401);
  });
});

describe("CORS", () => {
  async function withOrigins(origins: string | undefined, path: string, init: RequestInit = {}) {
    const ctx = createExecutionContext();
    const res = await createApp().fetch(
      new Request(`http://local${path}`, init),
      { ...env, CORS_ORIGINS: origins },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    return res;
  }
  const LIST = "https://app.example.com, https://admin.example.com";

  it("echoes an allowlisted origin with Vary and credentials", async () => {
    const res = await withOrigins(LIST, "/v1/sessions", {
      headers: { origin: "https://admin.example.com" },
    });
    await res.body?.cancel();
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe("https://admin.example.com");
    expect(res.headers.get("vary")).toMatch(/Origin/);
    expect(res.headers.get("access-control-allow-credentials")).toBe("true");
    expect(res.headers.get("access-control-expose-headers")).toContain("Stream-Next-Offset");
    // Errors carry CORS too, so the page can read why a request failed.
    const refused = await withOrigins(LIST, "/v1/sessions/01ARZ3NDEKTSV4RRFFQ69G5FAV", {
      headers: { origin: "https://app.example.com", authorization: "Bearer eyJhbGciOi.x.y" },
    });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    expect(refused.headers.get("access-control-expose-headers")).toContain("WWW-Authenticate");
    expect(await errorCode(refused)).toBe("unauthorized");
  });

  it("puts the standard headers, once, on answers built here and on answers of a stream's object", async () => {
    const origin = { origin: "https://app.example.com" };
    const own = await withOrigins(LIST, "/v1/sessions", { headers: origin });
    await own.body?.cancel();
    // A stream read is answered by the Stream DO: its headers reach the worker immutable.
    const path = `/cors-${crypto.randomUUID()}`;
    const put = await withOrigins(LIST, `/v1/stream${path}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
    });
    await put.body?.cancel();
    expect(put.status).toBe(201);
    const read = await withOrigins(LIST, `/v1/stream${path}?offset=-1`, { headers: origin });
    await read.body?.cancel();
    expect(read.status).toBe(200);
    for (const res of [own, read]) {
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("cross-origin-resource-policy")).toBe("cross-origin");
      expect(res.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
      expect(res.headers.get("access-control-allow-credentials")).toBe("true");
      expect(res.headers.get("vary")).toBe("Origin");
      expect(res.headers.get("access-control-expose-headers")).toContain("Stream-Next-Offset");
    }
  });

  it("gives other origins no Access-Control-Allow-Origin, and refuses their preflight", async () => {
    const res = await withOrigins(LIST, "/v1/sessions", {
      headers: { origin: "https://evil.example.com" },
    });
    await res.body?.cancel();
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    expect(res.headers.get("access-control-allow-credentials")).toBeNull();
    expect(res.headers.get("vary")).toMatch(/Origin/);
    const pre = await withOrigins(LIST, "/v1/sessions", {
      method: "OPTIONS",
      headers: { origin: "https://evil.example.com", "access-control-request-method": "POST" },
    });
    expect(pre.status).toBe(403);
    expect(pre.headers.get("access-control-allow-origin")).toBeNull();
    expect(await errorCode(pre)).toBe("origin_not_allowed");
  });

  it("allows the headers a browser client sends in an allowlisted preflight", async () => {
    const pre = await withOrigins(LIST, "/v1/sessions/x/events", {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example.com",
        "access-control-request-method": "GET",
        "access-control-request-headers": "authorization, last-event-id",
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    const allowed = pre.headers.get("access-control-allow-headers")!.split(", ");
    expect(allowed).toEqual(
      expect.arrayContaining([
        "authorization",
        "content-type",
        "last-event-id",
        "producer-id",
        "stream-seq",
      ]),
    );
  });

  it("answers * without credentials when no allowlist is configured", async () => {
    const res = await withOrigins(undefined, "/v1/sessions", {
      headers: { origin: "https://anything.example.com" },
    });
    await res.body?.cancel();
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(res.headers.get("access-control-allow-credentials")).toBeNull();
    const pre = await withOrigins("", "/v1/sessions", {
      method: "OPTIONS",
      headers: { origin: "https://anything.example.com" },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe("*");
  });

  it("fails loudly on a malformed allowlist", async () => {
    const res = await withOrigins("https://app.example.com/", "/healthz");
    expect(res.status).toBe(500);
    await res.body?.cancel();
  });
});

describe("one offset vocabulary", () => {
  it("accepts the offsets routes return, as integers or wire offsets, in every read mode", async () => {
    const { id, sent } = await answeredSession();
    const full = await readEvents(`/v1/sessions/${id}/events?offset=-1&view=full`);
    const tail = full.at(-1)!.offset;
    // Every event is numbered, densely in the full view.
    expect(full.map((e) => e.offset)).toEqual(full.map((_, i) => i + 1));

    // Catch-up from the offset POST …/messages returned: the events after it.
    const afterInt = await readEvents(`/v1/sessions/${id}/events?offset=${sent.offset}`);
    const afterWire = await readEvents(
      `/v1/sessions/${id}/events?offset=${encodeOffset(sent.offset)}`,
    );
    expect(afterInt.length).toBeGreaterThan(0);
    expect(afterInt[0]!.offset).toBeGreaterThan(sent.offset);
    expect(afterWire).toEqual(afterInt);
    // The session's lastOffset (GET) is accepted too.
    const session = await getSession(id);
    const lastOffset = session.live.lastOffset;
    await expectStatus(await api(`/v1/sessions/${id}/events?offset=${lastOffset}`), 200);
    // Beyond the tail, or not an offset: 400.
    await expectStatus(await api(`/v1/sessions/${id}/events?offset=${tail + 1}`), 400);
    await expectStatus(await api(`/v1/sessions/${id}/events?offset=-5`), 400);

    // Stream-Next-Offset (wire form) is what a reader continues from.
    const first = await api(`/v1/sessions/${id}/events?offset=0`);
    const next = first.headers.get("stream-next-offset")!;
    await first.body?.cancel();
    expect(next).toBe(encodeOffset(tail));

    // Long-poll from an integer offset returns numbered events.
    const poll = await readEvents(`/v1/sessions/${id}/events?offset=${sent.offset}&live=long-poll`);
    expect(poll).toEqual(afterInt);

    // Durable Streams SSE: each data event is an array of numbered events.
    const sse = await api(`/v1/sessions/${id}/events?offset=${sent.offset}&live=sse`);
    const frames = await parseSse(sse, (seen) =>
      seen.some((f) => f.event === "control" && f.data.includes('"upToDate"')),
    );
    const data = frames
      .filter((f) => f.event === "data")
      .flatMap((f) => JSON.parse(f.data) as Event[]);
    expect(data).toEqual(afterInt);
    const control = JSON.parse(frames.find((f) => f.event === "control")!.data) as {
      streamNextOffset: string;
    };
    expect(control.streamNextOffset).toBe(encodeOffset(tail));
  });

  it("starts an EventSource at ?offset and resumes after Last-Event-ID in either form", async () => {
    const { id, sent } = await answeredSession();
    const view = await readEvents(`/v1/sessions/${id}/events?offset=-1`);
    const es = (query: string, lastEventId?: string) =>
      api(`/v1/sessions/${id}/events${query}`, {
        headers: {
          accept: "text/event-stream",
          ...(lastEventId === undefined ? {} : { "last-event-id": lastEventId }),
        },
      });
    const ids = async (res: Response, count: number) => {
      expect(res.status).toBe(200);
      const frames = await parseSse(res, (seen) => seen.length >= count);
      return frames.slice(0, count).map((f) => Number(f.id));
    };
    const expected = view.filter((e) => e.offset > sent.offset).map((e) => e.offset);
    expect(await ids(await es(`?offset=${sent.offset}`), expected.length)).toEqual(expected);
    expect(await ids(await es(`?offset=${encodeOffset(sent.offset)}`), expected.length)).toEqual(
      expected,
    );
    // Last-Event-ID wins over the URL's offset (a browser reconnects with the same URL).
    const resumeAt = expected[1]!;
    const rest = expected.slice(2);
    expect(await ids(await es("?offset=0", String(resumeAt)), rest.length)).toEqual(rest);
    expect(await ids(await es("?offset=0", encodeOffset(resumeAt)), rest.length)).toEqual(rest);
    await expectStatus(await es("", "x1"), 400, "invalid_offset");
    await expectStatus(await es("", "999999"), 400, "invalid_offset");
    // Each frame's data carries its own offset, equal to its id.
    const res = await es(`?offset=${sent.offset}`);
    const frames = await parseSse(res, (seen) => seen.length >= expected.length);
    for (const f of frames) expect((JSON.parse(f.data) as Event).offset).toBe(Number(f.id));
  });
});

describe("the client view", () => {
  it("leaves out plumbing and internal payloads by default, with offsets intact", async () => {
    const system = "SECRET SYSTEM PROMPT: be terse";
    const { id } = await answeredSession(system);
    const client = await readEvents(`/v1/sessions/${id}/events?offset=-1`);
    const full = await readEvents(`/v1/sessions/${id}/events?offset=-1&view=full`);
    const text = JSON.stringify(client);

    expect(full.some((e) => e.type.startsWith("stream/"))).toBe(true);
    expect(JSON.stringify(full)).toContain(system);
    expect(client.some((e) => e.type.startsWith("stream/"))).toBe(false);
    expect(text).not.toContain(system);
    expect(text).not.toContain("idempotencyKey");
    expect(text).not.toContain("binding");
    const request = client.find((e) => e.type === "model/request-requested")!;
    expect(Object.keys(request.payload).sort()).toEqual([
      "messageCount",
      "model",
      "requestId",
      "turnId",
    ]);
    const created = client.find((e) => e.type === "session/created")!;
    expect(created.payload).not.toHaveProperty("system");
    // What a UI needs is there, at the offsets the full stream has it.
    for (const type of ["session/input-added", "model/delta-produced", "turn/completed"]) {
      expect(
        client.some((e) => e.type === type),
        type,
      ).toBe(true);
    }
    const byOffset = new Map(full.map((e) => [e.offset, e.type]));
    for (const e of client) expect(byOffset.get(e.offset)).toBe(e.type);

    // The SSE views agree.
    const sse = await api(`/v1/sessions/${id}/events`, {
      headers: { accept: "text/event-stream" },
    });
    const frames = await parseSse(sse, (seen) => seen.length >= client.length);
    expect(frames.map((f) => Number(f.id))).toEqual(client.map((e) => e.offset));
    expect(frames.map((f) => f.data).join("")).not.toContain(system);
  });

  it("serves the full view to API keys only", async () => {
    const { id } = await answeredSession();
    const { token } = await mint(id, ["read", "write", "approve"]);
    await expectStatus(
      await api(`/v1/sessions/${id}/events?offset=-1&view=full`, { headers: bearer(token) }),
      403,
      "forbidden",
    );
    await expectStatus(await api(`/v1/sessions/${id}/events?offset=-1&view=raw`), 400);
    const viaToken = await readEvents(`/v1/sessions/${id}/events?offset=-1`, {
      headers: bearer(token),
    });
    expect(viaToken.some((e) => e.type.startsWith("stream/"))).toBe(false);
  });
});
