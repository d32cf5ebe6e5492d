/** A tiny client of the session API for workerd tests (requests go to the worker in-process). */
import { env, exports } from "cloudflare:workers";
import type { SentMessage, SessionDetail } from "../../src/client/types";
import {
  type SessionAgentStub,
  type SessionLive,
  sessionAgentStub,
} from "../../src/sessions/agent-rpc";
import type { StreamEvent } from "../../src/streams/messages";
import { streamStub } from "../../src/streams/stub";
import { rpcClient } from "./rpc";
import { waitFor } from "./wait";

/** `GET /v1/sessions/:id`'s session, typed by the route (src/http/sessions.ts). */
export type SessionView = SessionDetail;

export const api = (path: string, init?: RequestInit) =>
  exports.default.fetch(`http://local${path}`, init);

export const post = (path: string, body?: unknown, headers: Record<string, string> = {}) =>
  api(path, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

export async function createSession(body: Record<string, unknown> = {}): Promise<string> {
  const res = await post("/v1/sessions", body);
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { session: { id: string } }).session.id;
}

export async function sendMessage(
  id: string,
  content: string,
  idempotencyKey?: string,
): Promise<SentMessage> {
  const res = await post(`/v1/sessions/${id}/messages`, {
    content,
    ...(idempotencyKey ? { idempotencyKey } : {}),
  });
  if (res.status !== 202) throw new Error(`message failed: ${res.status} ${await res.text()}`);
  return (await res.json()) as SentMessage;
}

export async function getSession(id: string): Promise<SessionView> {
  const res = await api(`/v1/sessions/${id}`);
  if (res.status !== 200) throw new Error(`get failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { session: SessionView }).session;
}

export async function waitForSession(
  id: string,
  check: (s: SessionView) => boolean,
  timeoutMs = 15_000,
): Promise<SessionView> {
  let last: SessionView | undefined;
  await waitFor(async () => {
    last = await getSession(id);
    return check(last);
  }, timeoutMs);
  return last!;
}

/** Reads the whole session stream over RPC. */
export async function sessionEvents(id: string, tenant = "default"): Promise<StreamEvent[]> {
  const name = `${tenant}:/sessions/${id}`;
  const stub = rpcClient(streamStub(env, name));
  const out: StreamEvent[] = [];
  for (;;) {
    const page = await stub.read({ after: out.at(-1)?.offset ?? 0, limit: 1000 });
    out.push(...(page.events as StreamEvent[]));
    if (page.upToDate) return out;
  }
}

/** The session's Durable Object stub, for the cloudflare:test helpers (evict, alarm, …). */
export const sessionAgent = (id: string, tenant = "default"): SessionAgentStub =>
  sessionAgentStub(env.SESSIONS, tenant, id);

/** The same object through its RPC methods (answers unwrapped: values, or DomainErrors thrown). */
export const sessionRpc = (id: string, tenant = "default") => rpcClient(sessionAgent(id, tenant));

/** Every idempotency key appears once (no event was appended twice). */
/**
 * Waits until the session is idle with at least `messages` transcript messages (its live view
 * over RPC); a `failed` session fails the wait at once.
 */
export async function settledSession(
  id: string,
  messages: number,
  timeoutMs = 20_000,
): Promise<SessionLive> {
  let last: SessionLive | undefined;
  await waitFor(async () => {
    last = (await sessionRpc(id).live()) as SessionLive;
    if (last.status === "failed") throw new Error(`session failed: ${last.lastError}`);
    return last.status === "idle" && last.messageCount >= messages;
  }, timeoutMs);
  return last!;
}

export function duplicateKeys(events: StreamEvent[]): string[] {
  const seen = new Set<string>();
  const dupes: string[] = [];
  for (const e of events) {
    if (!e.idempotencyKey) continue;
    if (seen.has(e.idempotencyKey)) dupes.push(e.idempotencyKey);
    seen.add(e.idempotencyKey);
  }
  return dupes;
}
