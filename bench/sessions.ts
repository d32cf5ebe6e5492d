/**
 * `npm run bench:sessions`: starts `wrangler dev` with the scripted model at no delay and
 * prints, from one run:
 * - POST message → `turn/completed` seen on the session's SSE stream, p50/p99, against a
 *   plain stream append → SSE round trip measured in the same run and harness (ratio);
 * - sessions created per second (8 in flight).
 * `wrangler dev` adds milliseconds per request on a small machine, hence the same-run
 * baseline and the ratio. Runs on Node 22 (type stripping); loopback only; bounded.
 *
 * `npm run bench:sessions -- --long` (or BENCH_LONG=1) measures instead one long session
 * (issue 9): BENCH_LONG_TURNS (1,000) turns of BENCH_LONG_BYTES (4 KB) messages made of words
 * of BENCH_LONG_WORD characters (8, so about 500 words and reply deltas per turn). It prints
 * the turn p50 over turns 10–20 and over the last ten turns and their ratio (target ≤ 1.2),
 * and, from `GET /admin/tenants/<t>/sessions/<id>/storage`, the bytes stored by the session's
 * stream (event bodies and SQLite file) and SessionAgent (SQLite file) per byte of
 * conversation (target ≤ 2), with the share of `model/delta-produced` events.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createParser } from "eventsource-parser";
import { startDevServer } from "../test/support/dev-server.ts";
import { AUTH, JSON_HEADERS, openSse, percentile, postJson } from "./support/session-http.ts";

const here = dirname(fileURLToPath(import.meta.url));
const ROUND_TRIPS = Number(process.env.BENCH_ROUNDS ?? 40);
const LONG = process.argv.includes("--long") || process.env.BENCH_LONG === "1";
const LONG_TURNS = Number(process.env.BENCH_LONG_TURNS ?? 1000);
const LONG_BYTES = Number(process.env.BENCH_LONG_BYTES ?? 4096);
const LONG_WORD = Number(process.env.BENCH_LONG_WORD ?? 8);
const ADMIN = { authorization: "Bearer dev-admin-token" };
const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 80);

let base = "";

const post = (path: string, body: unknown) => postJson(base, path, body);

/**
 * Follows a session's EventSource stream across server-side closes (SSE connections end after
 * SSE_MAX_DURATION_MS), resuming after the last event id as a browser's EventSource does.
 */
function followSse(url: string, onData: (data: string) => void) {
  const controller = new AbortController();
  let lastId: string | null = null;
  const pump = (async () => {
    while (!controller.signal.aborted) {
      try {
        const headers: Record<string, string> = { ...AUTH, accept: "text/event-stream" };
        if (lastId !== null) headers["last-event-id"] = lastId;
        const res = await fetch(url, { headers, signal: controller.signal });
        if (res.status !== 200) throw new Error(`SSE ${url}: ${res.status}`);
        const parser = createParser({
          onEvent: (e) => {
            if (e.id !== undefined) lastId = e.id;
            onData(e.data);
          },
        });
        const reader = res.body!.getReader();
        const decoder = new TextDecoder();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          parser.feed(decoder.decode(value, { stream: true }));
        }
      } catch (error) {
        if (controller.signal.aborted) return;
        console.error(`SSE reconnecting after: ${String(error)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
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

/** A message of about `bytes` bytes, in words of `word` characters (space included), unique per turn. */
function longMessage(turn: number, bytes: number, word: number): string {
  const words: string[] = [];
  let size = 0;
  for (let w = 0; size < bytes; w++) {
    const text = `${turn.toString(36)}${w.toString(36)}`.padEnd(word - 1, "x");
    words.push(text);
    size += text.length + 1;
  }
  return words.join(" ");
}

interface StorageStats {
  stream: {
    databaseSize: number;
    eventBytes: number;
    events: number;
    byType: { type: string | null; events: number; bytes: number }[];
  };
  agent: { databaseSize: number; transcriptBytes: number; messageCount: number };
}

async function longSession() {
  const created = (await (await post("/v1/sessions", { title: "bench-long" })).json()) as {
    session: { id: string };
  };
  const id = created.session.id;
  let waiting: { turn: number; done: () => void } | null = null;
  let completed = 0;
  const sse = followSse(`${base}/v1/sessions/${id}/events`, (data) => {
    if (!data.includes('"turn/completed"')) return;
    completed += 1;
    if (waiting && completed >= waiting.turn) waiting.done();
  });
  const samples: number[] = [];
  const started = performance.now();
  for (let i = 0; i < LONG_TURNS; i++) {
    const sample = await timed(
      (done) => {
        waiting = { turn: i + 1, done };
      },
      async () =>
        (
          await post(`/v1/sessions/${id}/messages`, {
            content: longMessage(i, LONG_BYTES, LONG_WORD),
          })
        ).body?.cancel(),
    ).catch(async (error: unknown) => {
      // Say where the session stands, then give up.
      const view = await (await fetch(`${base}/v1/sessions/${id}`, { headers: AUTH })).text();
      console.error(`turn ${i + 1} did not complete: ${String(error)}\n${view.slice(0, 2000)}`);
      throw error;
    });
    samples.push(sample);
    if ((i + 1) % 100 === 0)
      console.log(
        `  turn ${i + 1}: p50 of the last 10 ${percentile(samples.slice(-10), 50).toFixed(1)} ms (${((performance.now() - started) / 1000).toFixed(0)} s)`,
      );
  }
  await sse.close();
  const res = await fetch(`${base}/admin/tenants/dev/sessions/${id}/storage`, { headers: ADMIN });
  if (res.status !== 200) throw new Error(`storage: ${res.status} ${await res.text()}`);
  const storage = (await res.json()) as StorageStats;
  const early = percentile(samples.slice(9, 20), 50);
  const late = percentile(samples.slice(-11), 50);
  const conversation = storage.agent.transcriptBytes;
  const deltas = storage.stream.byType.find((t) => t.type === "model/delta-produced") ?? {
    events: 0,
    bytes: 0,
  };
  const result = {
    turns: LONG_TURNS,
    messageBytes: LONG_BYTES,
    wordChars: LONG_WORD,
    turnMs: { p50Turns10to20: early, p50LastTenTurns: late, ratio: late / early },
    conversationBytes: conversation,
    messages: storage.agent.messageCount,
    stream: {
      events: storage.stream.events,
      eventBytes: storage.stream.eventBytes,
      eventBytesPerConversationByte: storage.stream.eventBytes / conversation,
      eventBytesWithoutDeltasPerConversationByte:
        (storage.stream.eventBytes - deltas.bytes) / conversation,
      deltaEvents: deltas.events,
      deltaBytes: deltas.bytes,
      databaseSize: storage.stream.databaseSize,
      databaseBytesPerConversationByte: storage.stream.databaseSize / conversation,
    },
    agent: {
      databaseSize: storage.agent.databaseSize,
      databaseBytesPerConversationByte: storage.agent.databaseSize / conversation,
    },
    byType: storage.stream.byType,
  };
  const f = (n: number) => n.toFixed(2);
  console.log(`\nbench:sessions --long (wrangler dev, scripted model, no delay)`);
  console.log(
    `  ${LONG_TURNS} turns of ${LONG_BYTES} B (${LONG_WORD}-char words), ${result.messages} messages, ${conversation} B of conversation`,
  );
  console.log(
    `  turn p50: turns 10-20 ${f(early)} ms, last 10 turns ${f(late)} ms, ratio ${f(result.turnMs.ratio)} (target <= 1.2)`,
  );
  console.log(
    `  stream: ${result.stream.events} events, ${result.stream.eventBytes} B of events = ${f(result.stream.eventBytesPerConversationByte)} B per conversation byte (${f(result.stream.eventBytesWithoutDeltasPerConversationByte)} without the ${deltas.events} delta events); SQLite ${result.stream.databaseSize} B = ${f(result.stream.databaseBytesPerConversationByte)}x`,
  );
  console.log(
    `  SessionAgent: SQLite ${result.agent.databaseSize} B = ${f(result.agent.databaseBytesPerConversationByte)}x the conversation`,
  );
  mkdirSync(join(here, "results"), { recursive: true });
  writeFileSync(
    join(here, "results", "sessions-long.json"),
    `${JSON.stringify(result, null, 2)}\n`,
  );
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
  const guard = setTimeout(
    () => {
      console.error("bench:sessions exceeded its time limit");
      void server.stop("SIGKILL").then(() => process.exit(1));
    },
    LONG ? 60 * 60_000 : 240_000,
  );
  try {
    if (LONG) {
      await longSession();
      return;
    }
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
