/**
 * Streams in the workerd integration tests: unique stream paths, RPC stubs for the
 * stream behind an HTTP path, HTTP requests through the worker, and error unwrapping.
 */
import { env, exports } from "cloudflare:workers";
import { expect } from "vitest";
import { DomainError } from "../../src/errors/domain";
import { streamName } from "../../src/streams/naming";
import { streamStub } from "../../src/streams/stub";
import { rpcClient, runDurableObjectAlarm } from "./rpc";
import { waitFor } from "./wait";

export const ORIGIN = "http://streams.test";
export const BASE = `${ORIGIN}/v1/stream`;

/** Storage is shared by every test of a file, so each test uses its own stream path. */
export function uniquePath(label: string): string {
  return `/${label}-${crypto.randomUUID()}`;
}

/**
 * The tenant that requests without an Authorization header act as in the tests
 * (INSECURE_DEFAULT_TENANT in vitest.config.ts); before auth existed it was "default".
 */
const TENANT = (env as { INSECURE_DEFAULT_TENANT?: string }).INSECURE_DEFAULT_TENANT || "default";

/** The stream's Durable Object name for an HTTP path, as the worker derives it. */
export const nameOf = (path: string) => streamName(TENANT, path);

/**
 * The Durable Object the worker routes `/v1/stream<path>` to, as an unwrapping RPC client
 * (usable with the cloudflare:test wrappers of ./rpc.ts).
 */
export function stubFor(path: string): StreamClient {
  return streamClient(nameOf(path));
}

/** An unwrapping RPC client of the stream with this Durable Object name (its declared StreamRpc). */
export const streamClient = (name: string) => rpcClient(streamStub(env, name));
export type StreamClient = ReturnType<typeof streamClient>;

/** A request through the worker (the exported default handler). */
export function http(path: string, init?: RequestInit, query = ""): Promise<Response> {
  return exports.default.fetch(`${BASE}${path}${query}`, init);
}

/** Awaits a promise that must reject over RPC and returns the DomainError it was unwrapped into. */
export async function rpcError(promise: Promise<unknown>): Promise<DomainError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  expect(caught, "expected the RPC call to reject").toBeDefined();
  expect(caught, `expected a DomainError, got ${String(caught)}`).toBeInstanceOf(DomainError);
  return caught as DomainError;
}

/** Status and Stream-Next-Offset from a HEAD (the body, if any, is consumed). */
export async function headState(path: string): Promise<{ status: number; next: string | null }> {
  const res = await http(path, { method: "HEAD" });
  await res.body?.cancel();
  return { status: res.status, next: res.headers.get("stream-next-offset") };
}

/** Creates a JSON stream over HTTP (201). */
export async function createJsonStream(path: string, headers: Record<string, string> = {}) {
  const res = await http(path, {
    method: "PUT",
    headers: { "content-type": "application/json", ...headers },
  });
  await res.body?.cancel();
  expect(res.status).toBe(201);
  return res;
}

/** Reads the whole JSON stream over HTTP from the start, following Stream-Next-Offset. */
export async function readAllJson(path: string): Promise<unknown[]> {
  const out: unknown[] = [];
  let offset = "-1";
  for (let i = 0; i < 1_000; i++) {
    const res = await http(path, undefined, `?offset=${offset}`);
    expect(res.status).toBe(200);
    out.push(...((await res.json()) as unknown[]));
    offset = res.headers.get("stream-next-offset")!;
    if (res.headers.get("stream-up-to-date") === "true") return out;
  }
  throw new Error("stream never reported up to date");
}

/**
 * Waits for `done`, firing the stream's alarm whenever a subscription's retry is due, so
 * that backoff retries run deterministically instead of on the wall clock.
 */
export async function pumpUntil(
  stream: object & { listSubscriptions(): Promise<{ nextRetryAt: string | null }[]> },
  done: () => Promise<boolean>,
  timeoutMs = 20_000,
) {
  await waitFor(
    async () => {
      if (await done()) return true;
      const subs = await stream.listSubscriptions();
      if (subs.some((s) => s.nextRetryAt !== null && Date.parse(s.nextRetryAt) <= Date.now())) {
        await runDurableObjectAlarm(stream);
      }
      return false;
    },
    timeoutMs,
    50,
  );
}
