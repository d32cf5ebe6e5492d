/**
 * `npm run bench:streams`: starts `wrangler dev` on the bench worker (bench/worker.ts, the
 * production app plus bench-only routes), measures, prints a summary and writes
 * bench/results/streams.json, then stops the server. Runs on Node 22 (type stripping).
 *
 * `wrangler dev` adds several milliseconds and caps the request rate on a small machine, so
 * absolute HTTP numbers say little about the app: each HTTP measurement is set against a
 * no-op measured in the same run, in the same harness, with the same request shape.
 *
 * 1. HTTP appends: single-event POSTs vs `POST /bench/noop` (reads the body, answers 204),
 *    sequential and 8 in flight, interleaved in rounds so drift hits both alike.
 * 2. Appends inside the Durable Object: batches of 100 events through the production
 *    appendBatch vs a raw SQLite INSERT loop of the same rows in the same DO class.
 * 3. Catch-up read of 100,000 events from offset -1, paging by Stream-Next-Offset.
 * 4. Append-to-SSE delivery latency with 1 and with 100 live SSE readers.
 */
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createParser } from "eventsource-parser";
import type { DevServer } from "../test/support/dev-server.ts";
import type { BenchOp, BenchRequest, BenchResult } from "./worker.ts";

const here = dirname(fileURLToPath(import.meta.url));
const RESULTS = join(here, "results", "streams.json");
const WRANGLER = join(here, "..", "node_modules", ".bin", "wrangler");
/** Hard bound on the whole run; the server is killed and the run fails past it. */
const RUN_LIMIT_MS = 170_000;

const PAD = "x".repeat(40);
/** One event as a JSON message (~90 bytes stored), the same shape in every section. */
const eventJson = (i: number, marker = "") =>
  JSON.stringify({ type: "bench/appended", payload: { i, marker, pad: PAD } });
const JSON_HEADERS = { "content-type": "application/json" };

// ---- small helpers --------------------------------------------------------------------

let base = "";
/** The bench tenant and its API key (minted at start-up through the admin routes). */
const TENANT = "bench";
let authorization = "";

async function request(
  method: string,
  path: string,
  body?: string,
  headers: Record<string, string> = JSON_HEADERS,
  anonymous = false,
): Promise<Response> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: anonymous ? headers : { ...headers, authorization },
    body,
  });
  if (res.status >= 300) {
    throw new Error(
      `${method} ${path} answered ${res.status}: ${(await res.text()).slice(0, 300)}`,
    );
  }
  return res;
}

/**
 * A request whose body is drained (keep-alive connections need it). `anonymous` leaves the
 * API key out: the bench server sets the test-only INSECURE_DEFAULT_TENANT to the bench
 * tenant, so such a request reaches the same streams without the key lookup.
 */
async function call(method: string, path: string, body?: string, anonymous = false) {
  const res = await request(method, path, body, JSON_HEADERS, anonymous);
  await res.arrayBuffer();
}

const median = (xs: number[]) => quantile(xs, 0.5);
function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const at = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[at]!;
}
const round = (x: number, digits = 0) => Number(x.toFixed(digits));
const fmt = (x: number, digits = 0) =>
  Number.isFinite(x)
    ? x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : "n/a";
const log = (line = "") => process.stdout.write(`${line}\n`);

async function createStream(path: string): Promise<void> {
  await call("PUT", `/v1/stream${path}`);
}

/** Runs `op` with `concurrency` loops for `ms`; returns completed ops and elapsed ms. */
async function runFor(
  ms: number,
  concurrency: number,
  op: (i: number) => Promise<void>,
): Promise<{ ops: number; elapsedMs: number }> {
  let ops = 0;
  const started = performance.now();
  const deadline = started + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        await op(ops);
        ops++;
      }
    }),
  );
  return { ops, elapsedMs: performance.now() - started };
}

// ---- 1. HTTP appends vs no-op -----------------------------------------------------------

type Variant =
  | "noop"
  | "doNoop"
  | "routerNoopAnon"
  | "routerNoop"
  | "routerInsert"
  | "appendAnon"
  | "append";
const VARIANTS: Variant[] = [
  "noop",
  "doNoop",
  "routerNoopAnon",
  "routerNoop",
  "routerInsert",
  "appendAnon",
  "append",
];
const ANONYMOUS = new Set<Variant>(["routerNoopAnon", "appendAnon"]);

interface VariantResult {
  perSec: number;
  requests: number;
  /** Per-request latency, milliseconds. */
  p50Ms: number;
  p99Ms: number;
  /** perSec / the no-op's perSec. */
  ratio: number;
}

/**
 * Every variant POSTs the same single-event JSON body with the same headers (the API key
 * included, except where said):
 * - noop: `POST /bench/noop`, answered by the worker (the baseline);
 * - doNoop: forwarded to a Durable Object that reads the body and answers 204 (+ DO hop);
 * - routerNoopAnon: `POST /v1/stream/__bench/noop…` without the API key, through the
 *   production router to a Durable Object that reads the body and answers 204 (+ Hono
 *   router, path checks, header copies);
 * - routerNoop: the same with the API key (+ the key lookup in D1);
 * - routerInsert: as routerNoop plus one raw SQLite INSERT (+ one write commit);
 * - appendAnon: the production append without the API key (no key lookup);
 * - append: the production `POST /v1/stream/<path>` with the API key: the headline.
 * Rounds are short and interleaved, rotating the order, because the machine is shared and
 * its load drifts; each variant's total is summed over all rounds.
 */
async function httpAppends(concurrency: number, rounds: number, roundMs: number) {
  const path = `/bench/http-append-c${concurrency}`;
  await createStream(path);
  const body = (i: number) => eventJson(i);
  const target: Record<Variant, string> = {
    noop: "/bench/noop",
    doNoop: `/bench/do-noop?path=/bench/do-noop-c${concurrency}`,
    routerNoopAnon: `/v1/stream/__bench/noop-c${concurrency}`,
    routerNoop: `/v1/stream/__bench/noop-c${concurrency}`,
    routerInsert: `/v1/stream/__bench/insert-c${concurrency}`,
    appendAnon: `/v1/stream${path}`,
    append: `/v1/stream${path}`,
  };
  const send = (v: Variant, i: number) => call("POST", target[v], body(i), ANONYMOUS.has(v));
  const totals = new Map(VARIANTS.map((v) => [v, { ops: 0, ms: 0, latencies: [] as number[] }]));
  const measure = (v: Variant) => async (i: number) => {
    const t0 = performance.now();
    await send(v, i);
    totals.get(v)!.latencies.push(performance.now() - t0);
  };
  // Warm every path (JIT, connections, the Durable Objects) before measuring.
  for (const v of VARIANTS) await runFor(250, concurrency, (i) => send(v, i));
  for (let r = 0; r < rounds; r++) {
    const order = VARIANTS.map((_, k) => VARIANTS[(k + r) % VARIANTS.length]!);
    for (const v of order) {
      const { ops, elapsedMs } = await runFor(roundMs, concurrency, measure(v));
      const t = totals.get(v)!;
      t.ops += ops;
      t.ms += elapsedMs;
    }
  }
  const perSec = (v: Variant) => (totals.get(v)!.ops / totals.get(v)!.ms) * 1000;
  const results = {} as Record<Variant, VariantResult>;
  for (const v of VARIANTS) {
    const t = totals.get(v)!;
    results[v] = {
      perSec: round(perSec(v), 1),
      requests: t.ops,
      p50Ms: round(quantile(t.latencies, 0.5), 2),
      p99Ms: round(quantile(t.latencies, 0.99), 2),
      ratio: round(perSec(v) / perSec("noop"), 3),
    };
  }
  const label = concurrency === 1 ? "sequential" : `${concurrency} in flight`;
  log(`  ${label}:`);
  const names: Record<Variant, string> = {
    noop: "no-op (worker only)",
    doNoop: "  + DO hop",
    routerNoopAnon: "  + production router",
    routerNoop: "  + API key lookup",
    routerInsert: "  + one raw INSERT",
    appendAnon: "append, no key lookup",
    append: "append (production)",
  };
  for (const v of VARIANTS) {
    const r = results[v];
    log(
      `    ${names[v].padEnd(22)} ${fmt(r.perSec).padStart(5)} req/s  ratio ${r.ratio.toFixed(2)}  p50 ${fmt(r.p50Ms, 1).padStart(5)} ms  p99 ${fmt(r.p99Ms, 1).padStart(5)} ms  (${r.requests} requests)`,
    );
  }
  return { concurrency, ratio: results.append.ratio, variants: results };
}

/**
 * Per single-event append, inside the Durable Object, in-process (no worker, no DO hop),
 * µs by the in-DO clock. Awaiting a request body lets the DO commit its implicit write
 * transaction, so the "+ body" variants pay one commit per append, like real requests.
 */
async function doSideAppendCost(count: number, reps: number) {
  const results = await measureOps(
    ["httpAppend", "rawInsert1", "rawInsert1Body", "rawInsert1BodyMeta"],
    count,
    1,
    reps,
  );
  const us = (r: DoOpResult) => round(1e6 / r.inDoRowsPerSec, 1);
  const out = {
    count,
    httpAppendUs: us(results.httpAppend),
    rawInsert1Us: us(results.rawInsert1),
    rawInsert1BodyUs: us(results.rawInsert1Body),
    rawInsert1BodyMetaUs: us(results.rawInsert1BodyMeta),
    results,
  };
  log(`  per append inside the DO, in-process (${fmt(count)} calls, median of ${reps}):`);
  log(`    production DO fetch (POST append)           ${fmt(out.httpAppendUs, 1).padStart(7)} µs`);
  log(
    `    raw: read request body + 1-row transaction  ${fmt(out.rawInsert1BodyUs, 1).padStart(7)} µs`,
  );
  log(
    `    raw: same + UPDATE of a metadata row        ${fmt(out.rawInsert1BodyMetaUs, 1).padStart(7)} µs`,
  );
  log(`    raw: 1-row transaction only (no commit)     ${fmt(out.rawInsert1Us, 1).padStart(7)} µs`);
  return out;
}

// ---- 2. appends inside the Durable Object ---------------------------------------------

interface DoOpResult {
  op: BenchOp;
  rows: number;
  bodyBytes: number;
  /** rows / (caller wall time - the same call with 0 batches), median over repetitions. */
  wallRowsPerSec: number;
  /** rows / Date.now() delta around the loop inside the DO, median over repetitions. */
  inDoRowsPerSec: number;
  wallMs: number[];
  overheadMs: number[];
  inDoMs: number[];
}

async function doBench(input: BenchRequest): Promise<{ wallMs: number; result: BenchResult }> {
  const started = performance.now();
  const res = await request("POST", "/bench/do", JSON.stringify(input));
  const result = (await res.json()) as BenchResult;
  return { wallMs: performance.now() - started, result };
}

const DO_PATHS: Record<BenchOp, string> = {
  appendBatch: "/bench/do-append",
  rawInsert: "/bench/do-append",
  rawInsertTxn: "/bench/do-append",
  validate: "/bench/do-append",
  encode: "/bench/do-append",
  readBack: "/bench/do-append",
  // writes behind the production core's cached metadata: a stream of its own
  logAppend: "/bench/do-log",
  logRead: "/bench/catch-up",
  rawRead: "/bench/catch-up",
  rawReadRows: "/bench/catch-up",
  sqlPageRead: "/bench/catch-up",
  sseFanout: "/bench/do-sse",
  httpAppend: "/bench/do-append",
  rawInsert1: "/bench/do-append",
  rawInsert1Body: "/bench/do-append",
  rawInsert1BodyMeta: "/bench/do-append",
};

/**
 * Runs each op `reps` times (after one warm-up), interleaved, inside its Durable Object.
 *
 * Timing: each loop runs inside the DO in one call, and two clocks are read.
 * - Wall time at the caller, minus the wall time of the same call with 0 batches (the fixed
 *   HTTP + worker + RPC overhead, measured right before). This includes the commit of the
 *   DO's implicit write transaction, which happens after the method returns and before its
 *   result is released (output gate): the full cost of durable appends.
 * - Date.now() around the loop inside the DO. Deployed workerd may hold the clock still
 *   between I/O, but local workerd advances it (checked: pure-CPU loops read non-zero), so
 *   this is the loop's own time, without the final commit.
 * Both are reported; medians over the repetitions.
 */
async function measureOps(ops: BenchOp[], batches: number, batchSize: number, reps: number) {
  const samples = new Map<
    BenchOp,
    { wall: number[]; overhead: number[]; inDo: number[]; rows: number; bodyBytes: number }
  >();
  for (let rep = -1; rep < reps; rep++) {
    for (const op of ops) {
      const input = { op, tenant: TENANT, path: DO_PATHS[op], batchSize, padBytes: PAD.length };
      const overhead = await doBench({ ...input, batches: 0 });
      const run = await doBench({ ...input, batches });
      if (rep < 0) continue; // warm-up
      const s = samples.get(op) ?? { wall: [], overhead: [], inDo: [], rows: 0, bodyBytes: 0 };
      s.wall.push(run.wallMs);
      s.overhead.push(overhead.wallMs);
      s.inDo.push(run.result.inDoClockMs);
      s.rows = run.result.rows;
      s.bodyBytes = run.result.bodyBytes;
      samples.set(op, s);
    }
  }
  const results = {} as Record<BenchOp, DoOpResult>;
  for (const op of ops) {
    const s = samples.get(op)!;
    const net = s.wall.map((w, i) => Math.max(0.1, w - s.overhead[i]!));
    results[op] = {
      op,
      rows: s.rows,
      bodyBytes: s.bodyBytes,
      wallRowsPerSec: round((s.rows / median(net)) * 1000),
      inDoRowsPerSec: round((s.rows / Math.max(0.5, median(s.inDo))) * 1000),
      wallMs: s.wall.map((x) => round(x, 1)),
      overheadMs: s.overhead.map((x) => round(x, 1)),
      inDoMs: s.inDo,
    };
  }
  return results;
}

function printOps(
  results: Partial<Record<BenchOp, DoOpResult>>,
  notes: Partial<Record<BenchOp, string>>,
) {
  for (const r of Object.values(results)) {
    log(
      `    ${r.op.padEnd(13)} ${fmt(r.wallRowsPerSec).padStart(9)} rows/s wall ${fmt(r.inDoRowsPerSec).padStart(11)} rows/s in-DO clock   ${notes[r.op] ?? ""}`,
    );
  }
}

async function doAppends(batches: number, reps: number) {
  const batchSize = 100;
  const results = await measureOps(
    ["appendBatch", "rawInsert", "rawInsertTxn", "validate", "encode", "logAppend", "readBack"],
    batches,
    batchSize,
    reps,
  );
  const a = results.appendBatch;
  const raw = results.rawInsert;
  const ratio = a.wallRowsPerSec / raw.wallRowsPerSec;
  const inDoRatio = a.inDoRowsPerSec / raw.inDoRowsPerSec;
  log(
    `  ${fmt(a.rows)} rows per call (${batches} batches of ${batchSize}, ${a.bodyBytes}-byte bodies), median of ${reps}:`,
  );
  printOps(results, {
    appendBatch: "production appendBatch, called in-process",
    rawInsert: "INSERT loop into a scratch table",
    rawInsertTxn: "same, one transactionSync per 100 rows",
    validate: "appendBatch step: zod validation",
    encode: "appendBatch step: encodeEvent",
    logAppend: "appendBatch step: StreamLog.append + touch",
    readBack: "appendBatch step: read back + decode",
  });
  log(
    `  appendBatch / raw INSERT: ${ratio.toFixed(2)} (wall, incl. commit), ${inDoRatio.toFixed(2)} (in-DO clock, loop only)`,
  );
  return {
    ratio: round(ratio, 3),
    inDoRatio: round(inDoRatio, 3),
    batches,
    batchSize,
    results,
  };
}

// ---- 3. catch-up read -------------------------------------------------------------------

async function catchUp(total: number, perPost: number, reps: number) {
  const path = "/bench/catch-up";
  await createStream(path);
  const seedStarted = performance.now();
  const bodies = Array.from({ length: total / perPost }, (_, p) =>
    JSON.stringify(
      Array.from({ length: perPost }, (_, i) => JSON.parse(eventJson(p * perPost + i))),
    ),
  );
  let next = 0;
  await Promise.all(
    Array.from({ length: 2 }, async () => {
      while (next < bodies.length) await call("POST", `/v1/stream${path}`, bodies[next++]);
    }),
  );
  const seedMs = performance.now() - seedStarted;
  log(
    `  seeded ${fmt(total)} events in ${fmt(seedMs)} ms (${fmt((total / seedMs) * 1000)} events/s, ${perPost} per POST)`,
  );

  const runs: { ms: number; parseMs: number; pages: number; bytes: number; events: number }[] = [];
  for (let rep = -1; rep < reps; rep++) {
    let offset = "-1";
    const bodiesRead: ArrayBuffer[] = [];
    const started = performance.now();
    for (;;) {
      const res = await request("GET", `/v1/stream${path}?offset=${offset}`, undefined, {});
      bodiesRead.push(await res.arrayBuffer());
      const nextOffset = res.headers.get("stream-next-offset");
      if (nextOffset === null) throw new Error("catch-up page without Stream-Next-Offset");
      offset = nextOffset;
      if (res.headers.get("stream-up-to-date") === "true") break;
    }
    const ms = performance.now() - started;
    // Counted (and so checked) outside the timed part: parsing is the client's own cost.
    const parseStarted = performance.now();
    const decoder = new TextDecoder();
    let events = 0;
    for (const body of bodiesRead) events += (JSON.parse(decoder.decode(body)) as unknown[]).length;
    const parseMs = performance.now() - parseStarted;
    if (events !== total) throw new Error(`catch-up read ${events} events, expected ${total}`);
    const bytes = bodiesRead.reduce((n, b) => n + b.byteLength, 0);
    if (rep >= 0) runs.push({ ms, parseMs, pages: bodiesRead.length, bytes, events });
  }
  const ms = median(runs.map((r) => r.ms));
  const parseMs = median(runs.map((r) => r.parseMs));
  const eventsPerSec = (total / ms) * 1000;
  const withParse = (total / (ms + parseMs)) * 1000;
  const { pages, bytes } = runs[0]!;
  log(
    `  read ${fmt(total)} events in ${pages} pages (${fmt(bytes / 1e6, 1)} MB): median ${fmt(ms)} ms of ${reps} -> ${fmt(eventsPerSec)} events/s (${fmt(withParse)} events/s with client JSON.parse)`,
  );
  const inDo = await measureOps(["logRead", "rawReadRows", "rawRead", "sqlPageRead"], 1, 0, reps);
  log("  the same read inside the Durable Object (no HTTP), whole stream:");
  printOps(inDo, {
    logRead: "production StreamLog.read pages + JSON join",
    rawReadRows: "StreamLog.read's SELECT, row objects, no checks/paging",
    rawRead: "SELECT body only, .raw() arrays, + JSON join",
    sqlPageRead: "same pages as logRead, JSON array built by SQLite",
  });
  return {
    events: total,
    pages,
    bytes,
    medianMs: round(ms, 1),
    eventsPerSec: round(eventsPerSec),
    eventsPerSecWithClientParse: round(withParse),
    runsMs: runs.map((r) => round(r.ms, 1)),
    seedMs: round(seedMs),
    seedEventsPerSec: round((total / seedMs) * 1000),
    inDo,
  };
}

// ---- 4. append -> SSE delivery latency ---------------------------------------------------

interface Reader {
  ready: Promise<void>;
  close(): void;
}

/** Pending marker: each reader reports once when it sees a data event containing it. */
let pending: { marker: string; t0: number; seen: Set<number>; onSeen: (r: number) => void } | null =
  null;

function openReader(id: number, path: string): Reader {
  const abort = new AbortController();
  let markReady!: () => void;
  let fail!: (error: unknown) => void;
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    fail = reject;
  });
  const parser = createParser({
    onEvent(event) {
      if (event.event === "control") markReady();
      if (event.event !== "data" || pending === null) return;
      const p = pending;
      if (!p.seen.has(id) && event.data.includes(p.marker)) {
        p.seen.add(id);
        p.onSeen(performance.now() - p.t0);
      }
    },
  });
  (async () => {
    const res = await fetch(`${base}/v1/stream${path}?offset=now&live=sse`, {
      headers: { authorization },
      signal: abort.signal,
    });
    if (res.status !== 200 || res.body === null) throw new Error(`SSE answered ${res.status}`);
    const decoder = new TextDecoder();
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      parser.feed(decoder.decode(chunk, { stream: true }));
    }
  })().catch((error) => {
    if (!abort.signal.aborted) fail(error);
  });
  return { ready, close: () => abort.abort() };
}

async function sseLatency(readers: number, appends: number) {
  const path = `/bench/sse-${readers}`;
  await createStream(path);
  const open = Array.from({ length: readers }, (_, id) => openReader(id, path));
  await Promise.all(open.map((r) => r.ready));
  const latencies: number[] = [];
  const firstMs: number[] = [];
  const lastMs: number[] = [];
  const postMs: number[] = [];
  let missed = 0;
  try {
    for (let i = -5; i < appends; i++) {
      const marker = `m${readers}-${i}-${Math.random().toString(36).slice(2)}`;
      const sample: number[] = [];
      let allSeen!: () => void;
      const done = new Promise<void>((resolve) => {
        allSeen = resolve;
      });
      const t0 = performance.now();
      pending = {
        marker,
        t0,
        seen: new Set(),
        onSeen: (ms) => {
          sample.push(ms);
          if (sample.length === readers) allSeen();
        },
      };
      await call("POST", `/v1/stream${path}`, eventJson(i, marker));
      postMs.push(performance.now() - t0);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        done,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, 5_000);
        }),
      ]);
      clearTimeout(timer);
      pending = null;
      if (i < 0) continue; // warm-up appends
      missed += readers - sample.length;
      latencies.push(...sample);
      if (sample.length > 0) {
        firstMs.push(Math.min(...sample));
        lastMs.push(Math.max(...sample));
      }
    }
  } finally {
    pending = null;
    for (const r of open) r.close();
  }
  const result = {
    readers,
    appends,
    samples: latencies.length,
    missed,
    p50Ms: round(quantile(latencies, 0.5), 2),
    p99Ms: round(quantile(latencies, 0.99), 2),
    maxMs: round(Math.max(...latencies), 2),
    appendPostP50Ms: round(median(postMs), 2),
    /** p50 over appends of the first and of the last reader to see each event. */
    firstReaderP50Ms: round(median(firstMs), 2),
    lastReaderP50Ms: round(median(lastMs), 2),
  };
  log(
    `  ${String(readers).padStart(3)} reader${readers === 1 ? " " : "s"}: p50 ${fmt(result.p50Ms, 2)} ms, p99 ${fmt(result.p99Ms, 2)} ms (${result.samples} samples${missed ? `, ${missed} MISSED` : ""}; append POST round trip p50 ${fmt(result.appendPostP50Ms, 2)} ms)`,
  );
  if (readers > 1) {
    log(
      `               per append, p50 of the first reader ${fmt(result.firstReaderP50Ms, 2)} ms, of the last ${fmt(result.lastReaderP50Ms, 2)} ms`,
    );
  }
  return result;
}

/** The DO's own cost of an append plus its delivery to `readers` in-process SSE readers. */
async function doSideFanout(readers: number, appends: number, reps: number) {
  const { sseFanout } = await measureOps(["sseFanout"], appends, readers, reps);
  const usPerAppend = round(1e6 / sseFanout.inDoRowsPerSec, 1);
  return { readers, appends, usPerAppend, inDoMs: sseFanout.inDoMs };
}

/** Round trip of the no-op, for reading the latency numbers against the harness's floor. */
async function noopRoundTrip(count: number) {
  const ms: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await call("POST", "/bench/noop", eventJson(i));
    ms.push(performance.now() - t0);
  }
  return { p50Ms: round(median(ms), 2), p99Ms: round(quantile(ms, 0.99), 2) };
}

// ---- set-up -----------------------------------------------------------------------------

/** bench/wrangler.toml must be ../wrangler.toml but for `name`, `main` and `migrations_dir`. */
function checkConfig(): void {
  const significant = (file: string) =>
    readFileSync(file, "utf8")
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line !== "" && !line.startsWith("#"))
      .filter((line) => !/^(name|main|migrations_dir)\s*=/.test(line));
  const prod = significant(join(here, "..", "wrangler.toml"));
  const bench = significant(join(here, "wrangler.toml"));
  const missing = prod.filter((line) => !bench.includes(line));
  const extra = bench.filter((line) => !prod.includes(line));
  if (missing.length > 0 || extra.length > 0 || prod.join("\n") !== bench.join("\n")) {
    throw new Error(
      `bench/wrangler.toml has drifted from wrangler.toml; copy it again (keeping name, main and migrations_dir).\n  only in wrangler.toml: ${JSON.stringify(missing)}\n  only in bench/wrangler.toml: ${JSON.stringify(extra)}`,
    );
  }
}

/**
 * Bundles bench/worker.ts once (`wrangler deploy --dry-run`, offline) and writes a config
 * that serves that bundle as it is (`no_bundle`). `wrangler dev` watches the sources it
 * bundles and restarts the worker when they change, which would cut requests off (and
 * measure a moving target) if anyone edits src/ during the run; the snapshot cannot change.
 */
async function buildSnapshot(dir: string): Promise<string> {
  const outdir = join(dir, "dist");
  await new Promise<void>((resolve, reject) => {
    execFile(
      WRANGLER,
      ["deploy", "--dry-run", "--outdir", outdir, "--config", join(here, "wrangler.toml")],
      { env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true", NO_COLOR: "1" } },
      (error, stdout, stderr) =>
        error
          ? reject(new Error(`bundling the bench worker failed:\n${stdout}${stderr}`))
          : resolve(),
    );
  });
  const config = readFileSync(join(here, "wrangler.toml"), "utf8")
    .replace(
      /^main = .*$/m,
      `main = ${JSON.stringify(join(outdir, "worker.js"))}\nno_bundle = true`,
    )
    .replace(
      /^migrations_dir = .*$/m,
      `migrations_dir = ${JSON.stringify(join(here, "..", "migrations"))}`,
    );
  const path = join(dir, "wrangler.toml");
  writeFileSync(path, config);
  return path;
}

/** Creates the bench tenant and one API key through the admin routes; returns the key. */
async function mintApiKey(adminToken: string): Promise<string> {
  const admin = { "content-type": "application/json", authorization: `Bearer ${adminToken}` };
  const tenant = await fetch(`${base}/admin/tenants`, {
    method: "POST",
    headers: admin,
    body: JSON.stringify({ id: TENANT, name: "bench" }),
  });
  if (tenant.status !== 201)
    throw new Error(`creating the bench tenant: ${tenant.status} ${await tenant.text()}`);
  await tenant.arrayBuffer();
  const key = await fetch(`${base}/admin/tenants/${TENANT}/keys`, {
    method: "POST",
    headers: admin,
    body: JSON.stringify({ name: "bench" }),
  });
  if (key.status !== 201)
    throw new Error(`minting the bench API key: ${key.status} ${await key.text()}`);
  return ((await key.json()) as { key: string }).key;
}

/** The production `authenticate` (API key → tenant, a D1 lookup), run in the worker. */
async function authCost(n: number, reps: number) {
  const ms: number[] = [];
  for (let rep = -1; rep < reps; rep++) {
    const res = await request("POST", `/bench/auth?n=${n}`);
    const { tenant, inWorkerClockMs } = (await res.json()) as {
      tenant: string;
      inWorkerClockMs: number;
    };
    if (tenant !== TENANT) throw new Error(`authenticated as ${tenant}`);
    if (rep >= 0) ms.push(inWorkerClockMs);
  }
  const usEach = round((median(ms) / n) * 1000, 1);
  log(
    `  production authenticate (API key -> tenant, D1 lookup) in the worker: ${fmt(usEach, 1)} µs per request`,
  );
  return { n, usEach, runsMs: ms };
}

/** The commit measured, and whether the working tree differed from it. */
function gitState(): { commit: string; dirty: boolean } | null {
  try {
    const git = (...args: string[]) =>
      execFileSync("git", args, { cwd: join(here, ".."), encoding: "utf8" }).trim();
    return { commit: git("rev-parse", "HEAD"), dirty: git("status", "--porcelain") !== "" };
  } catch {
    return null;
  }
}

// ---- main -------------------------------------------------------------------------------

async function main() {
  const runStarted = Date.now();
  checkConfig();
  const git = gitState(); // what the bundle below is built from
  // Keep wrangler on loopback: no update check (its banner) and no download of request.cf
  // data. Set before the dev-server helper is loaded, since it copies the environment then.
  process.env.WRANGLER_HIDE_BANNER ??= "true";
  process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= "false";
  const { startDevServer } = await import("../test/support/dev-server.ts");
  // The server's SQLite files go on tmpfs when there is one: the VM disk is shared with
  // other work and its fsync jitter would swamp the differences measured here (set
  // BENCH_PERSIST_ROOT to a disk directory to include it).
  const persistRoot =
    process.env.BENCH_PERSIST_ROOT ?? (existsSync("/dev/shm") ? "/dev/shm" : tmpdir());
  const persistDir = mkdtempSync(join(persistRoot, "das-bench-"));
  const buildDir = mkdtempSync(join(tmpdir(), "das-bench-build-"));
  const cleanUp = () => {
    rmSync(persistDir, { recursive: true, force: true });
    rmSync(buildDir, { recursive: true, force: true });
  };
  let server: DevServer | undefined;
  const abandon = (code: number) => {
    server?.child.kill("SIGKILL");
    cleanUp();
    process.exit(code);
  };
  const watchdog = setTimeout(() => {
    process.stderr.write(`bench: exceeded ${RUN_LIMIT_MS / 1000}s, stopping\n`);
    abandon(1);
  }, RUN_LIMIT_MS);
  watchdog.unref();
  process.once("SIGINT", () => abandon(130));
  process.once("SIGTERM", () => abandon(143));

  const loadAtStart = loadavg()[0]!;
  log(
    `bench:streams — ${cpus().length} CPUs, 1-min load average ${loadAtStart.toFixed(2)}; bundling bench/worker.ts and starting wrangler dev …`,
  );
  try {
    const config = await buildSnapshot(buildDir);
    const adminToken = randomBytes(24).toString("hex");
    server = await startDevServer({
      config,
      persistDir,
      migrate: true,
      vars: { ADMIN_TOKEN: adminToken, INSECURE_DEFAULT_TENANT: TENANT },
    });
    base = server.url;
    log(
      `server up at ${base} in ${fmt((Date.now() - runStarted) / 1000, 1)} s (worker bundled once from bench/worker.ts; state in ${persistDir})`,
    );
    authorization = `Bearer ${await mintApiKey(adminToken)}`;
    // Let the freshly started server settle (JIT, first-request work) before any numbers.
    await runFor(1_500, 2, (i) => call("POST", "/bench/noop", eventJson(i)));

    log("\n1. HTTP single-event appends vs no-op POST (same harness, interleaved rounds)");
    const httpSeq = await httpAppends(1, 5, 600);
    const httpConc = await httpAppends(8, 5, 600);
    const doSide = await doSideAppendCost(2_000, 3);
    const auth = await authCost(200, 3);

    log("\n2. Appends inside the Durable Object: appendBatch(100 events) vs raw INSERT loop");
    const inDo = await doAppends(200, 3);

    log("\n3. Catch-up read of 100,000 events from offset -1 over HTTP");
    const read = await catchUp(100_000, 1_000, 3);

    log("\n4. Append -> SSE delivery latency (offset=now&live=sse)");
    const noopRtt = await noopRoundTrip(100);
    log(
      `  harness floor: no-op POST round trip p50 ${fmt(noopRtt.p50Ms, 2)} ms, p99 ${fmt(noopRtt.p99Ms, 2)} ms`,
    );
    const sse1 = await sseLatency(1, 200);
    const sse100 = await sseLatency(100, 50);
    const fan1 = await doSideFanout(1, 200, 3);
    const fan100 = await doSideFanout(100, 50, 3);
    log(
      `  inside the DO, in-process (no worker, proxy or client): append + delivery to 1 reader ${fmt(fan1.usPerAppend / 1000, 2)} ms, to 100 readers ${fmt(fan100.usPerAppend / 1000, 2)} ms (${fmt((fan100.usPerAppend - fan1.usPerAppend) / 99, 0)} µs per extra reader)`,
    );

    const seq = httpSeq.variants;
    const conc = httpConc.variants;
    const doA = inDo.results;
    const rows: [string, string, string, string, boolean | null][] = [
      [
        "HTTP append, sequential",
        `${fmt(seq.append.perSec)} vs no-op ${fmt(seq.noop.perSec)} req/s`,
        `ratio ${seq.append.ratio.toFixed(2)}`,
        ">= 0.80",
        seq.append.ratio >= 0.8,
      ],
      [
        "HTTP append, 8 in flight",
        `${fmt(conc.append.perSec)} vs no-op ${fmt(conc.noop.perSec)} req/s`,
        `ratio ${conc.append.ratio.toFixed(2)}`,
        ">= 0.80",
        conc.append.ratio >= 0.8,
      ],
      [
        "  (same, without the key lookup)",
        `${fmt(seq.appendAnon.perSec)} / ${fmt(conc.appendAnon.perSec)} req/s`,
        `${seq.appendAnon.ratio.toFixed(2)} / ${conc.appendAnon.ratio.toFixed(2)}`,
        "-",
        null,
      ],
      [
        "DO appendBatch(100), wall",
        `${fmt(doA.appendBatch.wallRowsPerSec)} vs raw ${fmt(doA.rawInsert.wallRowsPerSec)} rows/s`,
        `ratio ${inDo.ratio.toFixed(2)}`,
        ">= 0.50",
        inDo.ratio >= 0.5,
      ],
      [
        "DO appendBatch(100), in-DO clock",
        `${fmt(doA.appendBatch.inDoRowsPerSec)} vs raw ${fmt(doA.rawInsert.inDoRowsPerSec)} rows/s`,
        `ratio ${inDo.inDoRatio.toFixed(2)}`,
        ">= 0.50",
        inDo.inDoRatio >= 0.5,
      ],
      [
        "Catch-up read 100k from -1",
        `${fmt(read.eventsPerSec)} events/s`,
        `${fmt(read.medianMs)} ms`,
        ">= 300,000/s",
        read.eventsPerSec >= 300_000,
      ],
      [
        "Append->SSE, 1 reader",
        `p50 ${fmt(sse1.p50Ms, 2)} ms`,
        `p99 ${fmt(sse1.p99Ms, 2)} ms`,
        "p50 <= 5 ms",
        sse1.p50Ms <= 5,
      ],
      [
        "Append->SSE, 100 readers",
        `p50 ${fmt(sse100.p50Ms, 2)} ms`,
        `p99 ${fmt(sse100.p99Ms, 2)} ms`,
        "-",
        null,
      ],
    ];
    log("\nSummary");
    const widths = [33, 38, 14, 13];
    log(
      `  ${["measure", "value", "", "target"].map((h, i) => h.padEnd(widths[i]!)).join(" ")} met`,
    );
    for (const [name, value, extra, target, met] of rows) {
      const verdict = met === null ? "" : met ? "yes" : "NO";
      log(
        `  ${[name, value, extra, target].map((c, i) => c.padEnd(widths[i]!)).join(" ")} ${verdict}`,
      );
    }
    log(
      `  (harness floor: no-op POST round trip p50 ${fmt(noopRtt.p50Ms, 2)} ms; SSE latency includes one request's path in and the event's path out)`,
    );

    const results = {
      ranAt: new Date(runStarted).toISOString(),
      durationSeconds: round((Date.now() - runStarted) / 1000, 1),
      node: process.version,
      harness: "wrangler dev (bench/wrangler.toml), loopback",
      git,
      persistRoot,
      cpus: cpus().length,
      loadAverage: { start: round(loadAtStart, 2), end: round(loadavg()[0]!, 2) },
      httpAppends: { sequential: httpSeq, concurrent: httpConc, doSide, auth, target: 0.8 },
      doAppends: { ...inDo, target: 0.5 },
      catchUpRead: { ...read, target: 300_000 },
      sseLatency: {
        noopRoundTrip: noopRtt,
        oneReader: sse1,
        hundredReaders: sse100,
        inDo: { oneReader: fan1, hundredReaders: fan100 },
        targetP50Ms: 5,
      },
    };
    mkdirSync(dirname(RESULTS), { recursive: true });
    writeFileSync(RESULTS, `${JSON.stringify(results, null, 2)}\n`);
    log(
      `  1-min load average: ${loadAtStart.toFixed(2)} at start, ${loadavg()[0]!.toFixed(2)} at end`,
    );
    log(`\nwrote ${RESULTS} (${fmt((Date.now() - runStarted) / 1000, 1)} s in all)`);
  } finally {
    await server?.stop();
    cleanUp();
    clearTimeout(watchdog);
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`bench failed: ${(error as Error).stack ?? error}\n`);
    process.exit(1);
  },
);
