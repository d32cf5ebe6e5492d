/**
 * The flows a user clicks through, against the real dev server with persistence: a turn that
 * pauses for approval, then a server killed with SIGKILL in the middle of a reply and started
 * again on the same data — the turn completes, once, with no duplicate events.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type DevServer, startDevServer } from "../support/dev-server";

// The local development key from .dev.vars (see README).
const AUTH = { authorization: "Bearer das_dev_local_development_key_0000" };
const persistDir = mkdtempSync(join(tmpdir(), "das-e2e-"));
let server: DevServer | undefined;

interface Event {
  type?: string;
  payload?: Record<string, unknown>;
  idempotencyKey?: string;
}

async function call(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${server!.url}${path}`, {
    ...init,
    headers: { ...AUTH, "content-type": "application/json", ...init.headers },
  });
}

async function until<T>(
  what: string,
  get: () => Promise<T>,
  ok: (value: T) => boolean,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    try {
      last = await get();
      if (ok(last)) return last;
    } catch {
      // the server may be restarting
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `${what} not reached within ${timeoutMs} ms; last: ${JSON.stringify(last)?.slice(0, 500)}`,
  );
}

const events = async (id: string): Promise<Event[]> =>
  (await (await call(`/v1/sessions/${id}/events?offset=-1`)).json()) as Event[];
const session = async (id: string) =>
  (
    (await (await call(`/v1/sessions/${id}`)).json()) as {
      session: {
        status: string;
        live: {
          status: string;
          pendingApprovals: { toolCallId: string }[];
          messages: { role: string; content?: string }[];
        };
      };
    }
  ).session;

async function createSession(): Promise<string> {
  const res = await call("/v1/sessions", {
    method: "POST",
    body: JSON.stringify({ title: "e2e" }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { session: { id: string } }).session.id;
}

async function send(id: string, content: string) {
  const res = await call(`/v1/sessions/${id}/messages`, {
    method: "POST",
    body: JSON.stringify({ content }),
  });
  expect(res.status).toBe(202);
  await res.body?.cancel();
}

afterAll(async () => {
  await server?.stop("SIGKILL");
});

describe("sessions against the dev server", () => {
  it("pauses for approval, then answers with the tool's result", async () => {
    server = await startDevServer({ persistDir, migrate: true });
    const id = await createSession();
    await send(id, 'call notes_write {"key":"todo","text":"buy milk"}');
    await until(
      "awaiting_approval in the list",
      async () =>
        (await (await call("/v1/sessions?status=awaiting_approval")).json()) as {
          sessions: { id: string }[];
        },
      (page) => page.sessions.some((s) => s.id === id),
    );
    const waiting = await session(id);
    const callId = waiting.live.pendingApprovals[0]!.toolCallId;
    const decided = await call(`/v1/sessions/${id}/tool-calls/${callId}/decision`, {
      method: "POST",
      body: JSON.stringify({ approved: true }),
    });
    expect(decided.status).toBe(200);
    await decided.body?.cancel();
    const done = await until(
      "idle",
      () => session(id),
      (s) => s.status === "idle" && s.live.messages.length === 4,
    );
    expect(done.live.messages[3]!.content).toContain('{"saved":true,"key":"todo"}');
  });

  it("completes a turn once after the server is killed mid-reply", async () => {
    await server!.stop();
    server = await startDevServer({ persistDir, vars: { SCRIPTED_MODEL_DELAY_MS: "150" } });
    const id = await createSession();
    const words = Array.from({ length: 40 }, (_, i) => `word${i}`).join(" ");
    await send(id, words);
    await until(
      "a few deltas",
      () => events(id),
      (all) => all.filter((e) => e.type === "model/delta-produced").length >= 5,
    );
    await server.stop("SIGKILL");
    server = await startDevServer({ persistDir, vars: { SCRIPTED_MODEL_DELAY_MS: "0" } });
    const done = await until(
      "the turn to complete after the restart",
      () => session(id),
      (s) => s.live.status === "idle" && s.live.messages.length === 2,
      90_000,
    );
    expect(done.live.messages[1]!.content).toBe(`You said: ${words}`);
    const all = await events(id);
    const keys = all.flatMap((e) => (e.idempotencyKey ? [e.idempotencyKey] : []));
    expect(new Set(keys).size).toBe(keys.length);
    expect(all.filter((e) => e.type === "model/request-completed")).toHaveLength(1);
    expect(all.filter((e) => e.type === "turn/completed")).toHaveLength(1);
    expect(all.filter((e) => e.type === "model/request-started").length).toBeGreaterThanOrEqual(2);
  });
});
