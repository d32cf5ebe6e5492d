/**
 * Bench-only worker (bench/wrangler.toml, used by `npm run bench:streams`; never deployed).
 *
 * - `POST /bench/noop` reads the body and answers 204: the no-op baseline for HTTP appends,
 *   with the same request shape (method, headers, body) and the same dev-server hops.
 * - `POST /bench/do-noop?path=…` forwards the request to a Durable Object (as the app's
 *   stream route does, without the router), which reads the body and answers 204.
 * - The Durable Object also answers, before the protocol handler, `POST /v1/stream/__bench/
 *   noop…` (reads the body, 204) and `POST /v1/stream/__bench/insert…` (reads the body, one
 *   raw INSERT, 204). Those URLs go through the production router, so with the no-op they
 *   split an HTTP append's cost into harness, DO hop, router, commit and the app's own work.
 * - `POST /bench/do` runs one in-Durable-Object measurement (see BenchOp) and returns its
 *   result as JSON.
 * - `POST /bench/auth?n=N` runs the production `authenticate` on the request's Authorization
 *   header N times in the worker and returns the worker clock's reading for the loop.
 * - everything else is the production app, unchanged.
 *
 * The Durable Object class keeps its production name so that the binding and the migration
 * of the production config apply unchanged; it only adds bench methods. Every other class
 * the production entry exports is re-exported as it is.
 */

import { z } from "zod";
import { authenticate } from "../src/auth/authenticate";
import type { Env } from "../src/env";
import { STREAM_ROUTE } from "../src/http/stream-proxy";
import production from "../src/index";
import { unwrap } from "../src/rpc/result";
import { StreamDurableObject as ProdStreamDurableObject } from "../src/stream-object";
import { StreamLog } from "../src/streams/log";
import { decodeEvent, encodeEvent, eventInputSchema } from "../src/streams/messages";
import { streamName } from "../src/streams/naming";

/** What `POST /bench/do` runs inside the stream's Durable Object. */
export interface BenchRequest {
  op: BenchOp;
  /** Tenant the stream belongs to (its DO name is `<tenant>:<path>`). */
  tenant: string;
  /** Stream path; the stream is created (JSON) if missing. */
  path: string;
  batches: number;
  batchSize: number;
  /** Length of the padding string in each event's payload. */
  padBytes: number;
}

/**
 * - `appendBatch`: `batches` calls of the production `appendBatch` (the RPC method body, called
 *   in-process: zod validation, encoding, StreamCore.append in one transaction, read-back of
 *   the committed events, alarm bookkeeping), `batchSize` events each.
 * - `rawInsert`: the same number of rows, with a body of the same length as the stored
 *   event, INSERTed one by one into a scratch table of the same shape (no transaction).
 * - `rawInsertTxn`: as rawInsert, with one `transactionSync` per batch (as appendBatch does).
 * - `validate`, `encode`, `logAppend`, `readBack`: single steps of appendBatch, for a cost
 *   breakdown. `logAppend` is StreamLog.append + touch in one transaction with pre-encoded
 *   messages; it writes behind the production StreamCore's cached metadata, so it must run
 *   on a stream of its own that nothing else appends to.
 * - `logRead`: the whole stream read as catch-up GETs read it (StreamLog.read pages of at most
 *   20,000 messages / 1 MiB, each joined into a JSON array); `rawRead`: the same bodies from
 *   one raw `SELECT body … ORDER BY offset` cursor (`.raw()` arrays), joined the same way;
 *   `rawReadRows`: StreamLog.read's own six-column SELECT as one cursor of row objects,
 *   without validation or paging; `sqlPageRead`: the same pages as logRead (at most 20,000
 *   messages / 1 MiB) with each page's JSON array built by SQLite (`group_concat` over a
 *   running byte sum), one result row per page. The whole stream is read `batches` times;
 *   `rows` counts the messages read.
 * - `sseFanout`: opens `batchSize` SSE reads (`offset=now&live=sse`) on the DO's own fetch,
 *   in-process, then makes `batches` single-event appends through the DO's fetch, each
 *   followed by waiting until every reader has its data frame: the DO-side cost of an
 *   append plus its delivery, without the worker, the dev-server proxy or the client.
 *   `rows` is the number of appends.
 * - `httpAppend`: `batches` single-event appends through the production HTTP door of the
 *   Durable Object (its `fetch`: protocol handler, StreamCore.append, alarm bookkeeping),
 *   called in-process with a constructed Request, so without the worker and the DO hop (its
 *   awaited body read lets the DO commit after each append, as real requests do); `rawInsert1`: `batches` single-row transactions into the scratch
 *   table; `rawInsert1Body`: the same, each after reading the body of a constructed Request
 *   (as the HTTP door does; awaiting the body lets the DO commit between iterations);
 *   `rawInsert1BodyMeta`: as rawInsert1Body, plus an UPDATE of a one-row scratch metadata
 *   table in the same transaction (as StreamLog.append updates `stream_meta.tail`).
 *   `batchSize` is ignored (1).
 */
export type BenchOp =
  | "appendBatch"
  | "rawInsert"
  | "rawInsertTxn"
  | "validate"
  | "encode"
  | "logAppend"
  | "readBack"
  | "logRead"
  | "rawRead"
  | "rawReadRows"
  | "sqlPageRead"
  | "sseFanout"
  | "httpAppend"
  | "rawInsert1"
  | "rawInsert1Body"
  | "rawInsert1BodyMeta";

export interface BenchResult {
  op: BenchOp;
  rows: number;
  /** Body length of one stored event. */
  bodyBytes: number;
  /**
   * Date.now() delta around the loop inside the DO. Deployed workerd may hold the clock
   * still between I/O; local workerd (wrangler dev) advances it (checked: a pure-CPU loop
   * of zod parses reads a few ms), so this is the loop's own time, without the commit of
   * its writes, which happens after the method returns. See bench/streams.ts for the
   * wall-time measurement that includes the commit.
   */
  inDoClockMs: number;
}

const SCRATCH = `
CREATE TABLE IF NOT EXISTS bench_scratch (
  offset INTEGER PRIMARY KEY,
  append_start INTEGER NOT NULL,
  type TEXT,
  idempotency_key TEXT,
  body BLOB NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS bench_scratch_meta (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  tail INTEGER NOT NULL
);
INSERT INTO bench_scratch_meta (singleton, tail) VALUES (1, 0) ON CONFLICT DO NOTHING`;

const EVENT_TYPE = "bench/appended";

function benchEvents(batchSize: number, padBytes: number) {
  const pad = "x".repeat(padBytes);
  return Array.from({ length: batchSize }, (_, i) => ({ type: EVENT_TYPE, payload: { i, pad } }));
}

export class StreamDurableObject extends ProdStreamDurableObject {
  #scratchReady = false;

  #scratch(): void {
    if (this.#scratchReady) return;
    this.ctx.storage.sql.exec(SCRATCH);
    this.#scratchReady = true;
  }

  async bench(request: BenchRequest): Promise<BenchResult> {
    const { op, batches, batchSize, padBytes } = request;
    const events = benchEvents(batchSize, padBytes);
    const body = encodeEvent(benchEvents(1, padBytes)[0]!).body as string;
    const name = streamName(request.tenant, request.path);
    const head = await this.head();
    if (!head.ok)
      await unwrap(this.create(name, request.path, { contentType: "application/json" }));
    this.#scratch();

    const started = Date.now();
    let rows = batches * batchSize;
    switch (op) {
      case "appendBatch":
        for (let b = 0; b < batches; b++) await unwrap(this.appendBatch(events));
        break;
      case "rawInsert":
      case "rawInsertTxn": {
        const sql = this.ctx.storage.sql;
        let offset = sql
          .exec<{ n: number }>("SELECT COALESCE(MAX(offset), 0) AS n FROM bench_scratch")
          .one().n;
        const insertBatch = () => {
          const appendStart = offset + 1;
          const now = Date.now();
          for (let i = 0; i < batchSize; i++) {
            offset += 1;
            sql.exec(
              "INSERT INTO bench_scratch (offset, append_start, type, idempotency_key, body, created_at) VALUES (?, ?, ?, ?, ?, ?)",
              offset,
              appendStart,
              EVENT_TYPE,
              null,
              body,
              now,
            );
          }
        };
        for (let b = 0; b < batches; b++) {
          if (op === "rawInsertTxn") this.ctx.storage.transactionSync(insertBatch);
          else insertBatch();
        }
        break;
      }
      case "validate": {
        const schema = z.array(eventInputSchema).min(1).max(1_000);
        for (let b = 0; b < batches; b++) schema.parse(events);
        break;
      }
      case "encode":
        for (let b = 0; b < batches; b++) events.map(encodeEvent);
        break;
      case "logAppend": {
        const log = new StreamLog(this.ctx.storage);
        const messages = events.map(encodeEvent);
        for (let b = 0; b < batches; b++) {
          const now = Date.now();
          log.transaction(() => {
            log.append(messages, now);
            log.touch(now);
          });
        }
        break;
      }
      case "logRead": {
        const log = new StreamLog(this.ctx.storage);
        const tail = log.meta()?.tail ?? 0;
        rows = 0;
        for (let b = 0; b < batches; b++) {
          let after = 0;
          while (after < tail) {
            const page = log.read(after, tail, 20_000, 1024 * 1024);
            const text = `[${page.map((m) => m.body as string).join(",")}]`;
            if (text.length < 2) throw new Error("empty page");
            after = page.at(-1)!.offset;
            rows += page.length;
          }
        }
        break;
      }
      case "rawRead": {
        rows = 0;
        for (let b = 0; b < batches; b++) {
          const bodies: string[] = [];
          for (const [body] of this.ctx.storage.sql
            .exec<{ body: string }>("SELECT body FROM stream_messages ORDER BY offset")
            .raw()) {
            bodies.push(body as string);
          }
          if (`[${bodies.join(",")}]`.length < 2) throw new Error("empty read");
          rows += bodies.length;
        }
        break;
      }
      case "rawReadRows": {
        rows = 0;
        for (let b = 0; b < batches; b++) {
          const bodies: string[] = [];
          for (const row of this.ctx.storage.sql.exec(
            "SELECT offset, append_start, type, idempotency_key, body, created_at FROM stream_messages WHERE offset > ? AND offset <= ? ORDER BY offset LIMIT ?",
            0,
            Number.MAX_SAFE_INTEGER,
            Number.MAX_SAFE_INTEGER,
          )) {
            bodies.push(row.body as string);
          }
          if (`[${bodies.join(",")}]`.length < 2) throw new Error("empty read");
          rows += bodies.length;
        }
        break;
      }
      case "sqlPageRead": {
        const sql = this.ctx.storage.sql;
        const tail = new StreamLog(this.ctx.storage).meta()?.tail ?? 0;
        rows = 0;
        for (let b = 0; b < batches; b++) {
          let after = 0;
          while (after < tail) {
            const page = sql
              .exec<{ text: string; last: number; n: number }>(
                `WITH page AS (
                   SELECT offset, body,
                     SUM(length(body)) OVER (ORDER BY offset ROWS UNBOUNDED PRECEDING) AS bytes
                   FROM stream_messages WHERE offset > ?1 AND offset <= ?2 ORDER BY offset LIMIT ?3)
                 SELECT '[' || group_concat(body, ',') || ']' AS text, MAX(offset) AS last, COUNT(*) AS n
                 FROM (SELECT offset, body FROM page WHERE bytes <= ?4 OR offset = ?1 + 1 ORDER BY offset)`,
                after,
                tail,
                20_000,
                1024 * 1024,
              )
              .one();
            if (page.text.length < 2) throw new Error("empty page");
            after = page.last;
            rows += page.n;
          }
        }
        break;
      }
      case "sseFanout": {
        const base = `http://bench${STREAM_ROUTE}${request.path}`;
        const headers = { "content-type": "application/json" };
        const single = JSON.stringify(benchEvents(1, padBytes)[0]);
        const abort = new AbortController();
        const decoder = new TextDecoder();
        const readers = await Promise.all(
          Array.from({ length: batchSize }, async () => {
            const res = await this.fetch(
              new Request(`${base}?offset=now&live=sse`, { signal: abort.signal }),
            );
            return res.body!.getReader();
          }),
        );
        /** Reads until a frame with `event: <kind>` arrives. */
        const until = async (reader: ReadableStreamDefaultReader<Uint8Array>, kind: string) => {
          for (;;) {
            const { value, done } = await reader.read();
            if (done) throw new Error("SSE ended");
            if (decoder.decode(value).includes(`event: ${kind}`)) return;
          }
        };
        try {
          await Promise.all(readers.map((r) => until(r, "control")));
          const loopStarted = Date.now();
          for (let b = 0; b < batches; b++) {
            const res = await this.fetch(
              new Request(base, { method: "POST", headers, body: single }),
            );
            if (res.status !== 204) throw new Error(`append answered ${res.status}`);
            await Promise.all(readers.map((r) => until(r, "data")));
          }
          rows = batches;
          return { op, rows, bodyBytes: body.length, inDoClockMs: Date.now() - loopStarted };
        } finally {
          abort.abort();
          await Promise.all(readers.map((r) => r.cancel().catch(() => {})));
        }
      }
      case "httpAppend": {
        const url = `http://bench${STREAM_ROUTE}${request.path}`;
        const headers = { "content-type": "application/json" };
        const single = JSON.stringify(benchEvents(1, padBytes)[0]);
        for (let b = 0; b < batches; b++) {
          const res = await this.fetch(new Request(url, { method: "POST", headers, body: single }));
          if (res.status !== 204) throw new Error(`append answered ${res.status}`);
        }
        rows = batches;
        break;
      }
      case "rawInsert1":
      case "rawInsert1Body":
      case "rawInsert1BodyMeta": {
        const sql = this.ctx.storage.sql;
        const url = `http://bench/bench/raw`;
        let offset = sql
          .exec<{ n: number }>("SELECT COALESCE(MAX(offset), 0) AS n FROM bench_scratch")
          .one().n;
        for (let b = 0; b < batches; b++) {
          const text =
            op !== "rawInsert1" ? await new Request(url, { method: "POST", body }).text() : body;
          offset += 1;
          this.ctx.storage.transactionSync(() => {
            sql.exec(
              "INSERT INTO bench_scratch (offset, append_start, type, idempotency_key, body, created_at) VALUES (?, ?, ?, ?, ?, ?)",
              offset,
              offset,
              EVENT_TYPE,
              null,
              text,
              Date.now(),
            );
            if (op === "rawInsert1BodyMeta") {
              sql.exec("UPDATE bench_scratch_meta SET tail = ? WHERE singleton = 1", offset);
            }
          });
        }
        rows = batches;
        break;
      }
      case "readBack": {
        // What appendBatch does after committing: read the batch back and decode each row.
        const log = new StreamLog(this.ctx.storage);
        const tail = log.meta()?.tail ?? 0;
        const after = Math.max(0, tail - batchSize);
        for (let b = 0; b < batches; b++) {
          log.read(after, tail, batchSize).map((m) => decodeEvent(m.offset, m.body, m.createdAt));
        }
        break;
      }
    }
    return { op, rows, bodyBytes: body.length, inDoClockMs: Date.now() - started };
  }

  override async fetch(request: Request): Promise<Response> {
    const { pathname } = new URL(request.url);
    const bench =
      pathname === "/bench/do-noop" || pathname.startsWith(`${STREAM_ROUTE}/__bench/noop`)
        ? "noop"
        : pathname.startsWith(`${STREAM_ROUTE}/__bench/insert`)
          ? "insert"
          : null;
    if (bench !== null) {
      const body = await request.text();
      if (bench === "insert") {
        this.#scratch();
        this.ctx.storage.sql.exec(
          "INSERT INTO bench_scratch (offset, append_start, type, idempotency_key, body, created_at) VALUES ((SELECT COALESCE(MAX(offset), 0) + 1 FROM bench_scratch), 0, ?, NULL, ?, ?)",
          EVENT_TYPE,
          body,
          Date.now(),
        );
      }
      return new Response(null, { status: 204 });
    }
    return super.fetch(request);
  }
}

export * from "../src/index";

export default {
  async fetch(request, env, ctx): Promise<Response> {
    const url = new URL(request.url);
    if (request.method === "POST" && url.pathname === "/bench/noop") {
      await request.arrayBuffer();
      return new Response(null, { status: 204 });
    }
    if (request.method === "POST" && url.pathname === "/bench/do-noop") {
      // The same forwarding as the app's stream route: copied headers, streamed body.
      const path = url.searchParams.get("path") ?? "/bench/do-noop";
      const stub = env.STREAMS.get(env.STREAMS.idFromName(streamName("default", path)));
      return stub.fetch(
        new Request(request.url, {
          method: request.method,
          headers: new Headers(request.headers),
          body: request.body,
        }),
      );
    }
    if (request.method === "POST" && url.pathname === "/bench/do") {
      const input = (await request.json()) as BenchRequest;
      const streams = env.STREAMS as unknown as DurableObjectNamespace<StreamDurableObject>;
      const stub = streams.get(streams.idFromName(streamName(input.tenant, input.path)));
      return Response.json(await stub.bench(input));
    }
    if (request.method === "POST" && url.pathname === "/bench/auth") {
      const n = Number(url.searchParams.get("n") ?? "0");
      const header = request.headers.get("authorization");
      const started = Date.now();
      let tenant = "";
      for (let i = 0; i < n; i++) tenant = await authenticate(header, env);
      return Response.json({ n, tenant, inWorkerClockMs: Date.now() - started });
    }
    return production.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Env>;
