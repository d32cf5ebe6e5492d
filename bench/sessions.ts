/**
 * `npm run bench:sessions`: starts `wrangler dev` with the scripted model at no delay and
 * prints, from one run:
 * - POST message → `turn/completed` seen on the session's SSE stream, p50/p99, against a
 *   plain stream append → SSE round trip measured in the same run and harness (ratio);
 * - sessions created per second (8 in flight).
 * `wrangler dev` adds milliseconds per request on a small machine, hence the same-run
 * baseline and the ratio. Runs on Node 22 (type stripping); loopback only; bounded.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createParser } from "eventsource-parser";
import { startDevServer } from "../test/support/dev-server.ts";

const here = dirname(fileURLToPath(import.meta.url));
const AUTH = { authorization: "Bearer das_dev_local_development_key_0000" };
const JSON_HEADERS = { ...AUTH, "content-type": "application/json" };
const ROUND_TRIPS = Number(process.env.BENCH_ROUNDS ?? 40);
const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 80);

let base = "";

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function post(path: string, body: unknown): Promise<Response> {
  const res = await fetch(`${base}${path}`, {
    method: "POST",
    headers: JSON_HEADERS,
    body: JSON.stringify(body),
  });
  if (res.status >= 300) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
  return res;
}

/** Opens an SSE response and calls `onEvent` for every event until `close()`. */
async function openSse(
  url: string,
  headers: Record<string, string>,
  onEvent: (event: string, data: string) => void,
) {
  const controller = new AbortController();
  const res = await fetch(url, { headers: { ...AUTH, ...headers }, signal: controller.signal });
  if (res.status !== 200) throw new Error(`SSE ${url}: ${res.status}`);
  const parser = createParser({ onEvent: (e) => onEvent(e.event ?? "message", e.data) });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const pump = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        parser.feed(decoder.decode(value, { stream: true }));
      }
    } catch {
      // aborted
    }
  })();
  return {
    close: async () => {
      controller.abort();
      await pump;
    },
  };
}

/** Resolves when `predicate` becomes true after `trigger` runs; returns the elapsed ms. */
function timed(
  register: (done: () => void) => void,
  trigger: () => Promise<unknown>,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const timer = setTimeout(() => reject(new Error("timed out")), 30_000);
    register(() => {
      clearTimeout(timer);
      resolve(performance.now() - start);
    });
    trigger().catch(reject);
  });
}

async function streamRoundTrips(): Promise<number[]> {
  const path = `/v1/stream/bench/rt-${Date.now()}`;
  const created = await fetch(`${base}${path}`, { method: "PUT", headers: JSON_HEADERS });
  await created.body?.cancel();
  let waiting: { marker: string; done: () => void } | null = null;
  const sse = await openSse(`${base}${path}?offset=now&live=sse`, {}, (event, data) => {
    if (event === "data" && waiting && data.includes(waiting.marker)) waiting.done();
  });
  const samples: number[] = [];
  for (let i = 0; i < ROUND_TRIPS; i++) {
    const marker = `m-${i}-${Math.random()}`;
    samples.push(
      await timed(
        (done) => {
          waiting = { marker, done };
        },
        async () =>
          (await post(path, { type: "bench/pinged", payload: { marker } })).body?.cancel(),
      ),
    );
  }
  await sse.close();
  return samples;
}

async function sessionTurns(): Promise<number[]> {
  const created = (await (await post("/v1/sessions", { title: "bench" })).json()) as {
    session: { id: string };
  };
  const id = created.session.id;
  let waiting: { turn: number; done: () => void } | null = null;
  let completed = 0;
  const sse = await openSse(
    `${base}/v1/sessions/${id}/events`,
    { accept: "text/event-stream" },
    (_event, data) => {
      if (!data.includes('"turn/completed"')) return;
      completed += 1;
      if (waiting && completed >= waiting.turn) waiting.done();
    },
  );
  const samples: number[] = [];
  for (let i = 0; i < ROUND_TRIPS; i++) {
    samples.push(
      await timed(
        (done) => {
          waiting = { turn: i + 1, done };
        },
        async () =>
          (
            await post(`/v1/sessions/${id}/messages`, { content: `bench message ${i}` })
          ).body?.cancel(),
      ),
    );
  }
  await sse.close();
  return samples;
}

async function sessionsPerSecond(): Promise<number> {
  const start = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < SESSIONS) {
        next += 1;
        await (await post("/v1/sessions", { title: "throughput" })).body?.cancel();
      }
    }),
  );
  return SESSIONS / ((performance.now() - start) / 1000);
}

async function main() {
  const server = await startDevServer({ migrate: true, vars: { SCRIPTED_MODEL_DELAY_MS: "0" } });
  base = server.url;
  const guard = setTimeout(() => {
    console.error("bench:sessions exceeded its time limit");
    void server.stop("SIGKILL").then(() => process.exit(1));
  }, 240_000);
  try {
    // Warm up both paths so that first-request costs do not count.
    await streamRoundTrips().catch(() => undefined);
    const stream = await streamRoundTrips();
    const turns = await sessionTurns();
    const perSecond = await sessionsPerSecond();
    const result = {
      rounds: ROUND_TRIPS,
      streamRoundTripMs: { p50: percentile(stream, 50), p99: percentile(stream, 99) },
      sessionTurnMs: { p50: percentile(turns, 50), p99: percentile(turns, 99) },
      ratioP50: percentile(turns, 50) / percentile(stream, 50),
      sessionsPerSecond: perSecond,
    };
    const f = (n: number) => n.toFixed(1);
    console.log("\nbench:sessions (wrangler dev, scripted model, no delay)");
    console.log(
      `  stream append → SSE data       p50 ${f(result.streamRoundTripMs.p50)} ms  p99 ${f(result.streamRoundTripMs.p99)} ms`,
    );
    console.log(
      `  message → turn/completed (SSE) p50 ${f(result.sessionTurnMs.p50)} ms  p99 ${f(result.sessionTurnMs.p99)} ms`,
    );
    console.log(`  ratio (turn / round trip, p50) ${result.ratioP50.toFixed(2)}`);
    console.log(
      `  sessions created per second    ${f(result.sessionsPerSecond)} (8 in flight, ${SESSIONS} sessions)`,
    );
    mkdirSync(join(here, "results"), { recursive: true });
    writeFileSync(join(here, "results", "sessions.json"), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    clearTimeout(guard);
    await server.stop();
  }
}

await main();
