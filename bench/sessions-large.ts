/**
 * `npm run bench:sessions:large [-- reply|tool|message ...]`: large content in one session,
 * against `wrangler dev` with the scripted model at no delay (issue 9, requirements 3 and 4).
 * Modes (default: all):
 * - `reply`: a 1 MiB reply (`reply 1048576`): time to the first delta and to `turn/completed`
 *   on the session's SSE stream, delta events vs. the reply's words, stored bytes;
 * - `tool`: an 8 MiB tool result (`blob_make`): time to `turn/completed`, events by type,
 *   stored bytes;
 * - `message`: an 8 MiB user message (the request body limit): time to 202 and to
 *   `turn/completed`, events, stored bytes.
 * "Stored bytes" = the UTF-8 size of every stored message of the session's stream as read
 * back over SSE, and the growth of the local persistence directory (stream + SessionAgent
 * SQLite, including SQLite's own overhead). Kept apart from bench/sessions.ts so that the
 * two benchmarks evolve independently. Runs on Node 22; loopback only; bounded in time.
 */
import { mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startDevServer } from "../test/support/dev-server.ts";
import { followSse, postJson } from "./support/session-http.ts";

const here = dirname(fileURLToPath(import.meta.url));
const MiB = 1024 * 1024;
const encoder = new TextEncoder();

let base = "";
let persistDir = "";

const post = (path: string, body: unknown) => postJson(base, path, body);

function dirBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? dirBytes(path) : statSync(path).size;
  }
  return total;
}

interface Watch {
  start: number;
  firstDeltaMs: number | null;
  completedMs: number | null;
  byType: Map<string, number>;
  streamBytes: number;
  /** The text of the last attempt's deltas. */
  deltaText: string[];
  done: Promise<void>;
  close(): Promise<void>;
}

/**
 * Follows a session's events over SSE from the beginning, counting and timing them. The
 * server ends an SSE response after SSE_MAX_DURATION_MS; the watcher then reconnects with
 * Last-Event-ID, as an EventSource does.
 */
async function watch(id: string): Promise<Watch> {
  let finish: () => void = () => undefined;
  let fail: (e: Error) => void = () => undefined;
  let finished = false;
  const w: Watch = {
    start: performance.now(),
    firstDeltaMs: null,
    completedMs: null,
    byType: new Map(),
    streamBytes: 0,
    deltaText: [],
    done: new Promise<void>((resolve, reject) => {
      finish = () => {
        finished = true;
        resolve();
      };
      fail = reject;
    }),
    close: async () => {
      finished = true;
      await sse.close();
    },
  };
  const sse = await followSse(
    () => `${base}/v1/sessions/${id}/events`,
    (e) => {
      w.streamBytes += encoder.encode(e.data).byteLength;
      const message = JSON.parse(e.data) as { type?: string; payload?: { text?: string } };
      const type = message.type ?? "(untyped)";
      if (type === "model/request-started") w.deltaText = [];
      if (type === "model/delta-produced") w.deltaText.push(message.payload?.text ?? "");
      w.byType.set(type, (w.byType.get(type) ?? 0) + 1);
      const at = performance.now() - w.start;
      if (type === "model/delta-produced" && w.firstDeltaMs === null) w.firstDeltaMs = at;
      if (type === "turn/completed") {
        w.completedMs = at;
        finish();
      }
      if (type === "session/failed") fail(new Error(`session failed: ${e.data.slice(0, 300)}`));
    },
    () => !finished,
  );
  return w;
}

async function session(body: Record<string, unknown>): Promise<string> {
  const created = (await (await post("/v1/sessions", body)).json()) as { session: { id: string } };
  return created.session.id;
}

async function run(name: string, tools: string[] | undefined, content: string) {
  const id = await session({ title: `bench ${name}`, ...(tools ? { tools } : {}) });
  const diskBefore = dirBytes(persistDir);
  const w = await watch(id);
  w.start = performance.now();
  await (await post(`/v1/sessions/${id}/messages`, { content })).body?.cancel();
  const acceptedMs = performance.now() - w.start;
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`${name}: no turn/completed within 180 s`)), 180_000).unref(),
  );
  const progress = process.env.BENCH_DEBUG
    ? setInterval(() => console.error(name, Object.fromEntries(w.byType)), 5_000)
    : null;
  await Promise.race([w.done, timeout]).finally(() => progress && clearInterval(progress));
  // Let the tail of the stream (anything after turn/completed) arrive, then stop.
  await new Promise((r) => setTimeout(r, 500));
  await w.close();
  return {
    acceptedMs,
    firstDeltaMs: w.firstDeltaMs,
    completedMs: w.completedMs,
    events: Object.fromEntries([...w.byType.entries()].sort()),
    totalEvents: [...w.byType.values()].reduce((a, b) => a + b, 0),
    streamBytes: w.streamBytes,
    /** Words of the streamed text (as the scripted model splits them: one delta each). */
    streamedWords: (w.deltaText.join("").match(/\S+\s*/g) ?? []).length,
    diskGrowthBytes: dirBytes(persistDir) - diskBefore,
  };
}

const modes = {
  reply: async () => {
    const result = await run("reply", undefined, `reply ${MiB}`);
    return { replyBytes: MiB, ...result };
  },
  tool: async () => {
    const bytes = 8 * MiB - 2; // the result's JSON is exactly 8 MiB
    const result = await run("tool", ["blob_make"], `call blob_make {"bytes":${bytes}}`);
    return { resultBytes: 8 * MiB, ...result };
  },
  message: async () => {
    const prefix = '{"content":""}'.length;
    const result = await run("message", undefined, "m".repeat(8 * MiB - prefix));
    return { messageBytes: 8 * MiB - prefix, ...result };
  },
};
type Mode = keyof typeof modes;

async function main() {
  const asked: string[] = process.argv.slice(2).filter((a: string) => a !== "--");
  for (const a of asked)
    if (!Object.hasOwn(modes, a)) throw new Error(`unknown mode ${a}; use reply, tool, message`);
  const selected = (asked.length > 0 ? asked : Object.keys(modes)) as Mode[];
  const server = await startDevServer({ migrate: true, vars: { SCRIPTED_MODEL_DELAY_MS: "0" } });
  base = server.url;
  persistDir = server.persistDir;
  const guard = setTimeout(() => {
    console.error("bench:sessions:large exceeded its time limit");
    void server.stop("SIGKILL").then(() => process.exit(1));
  }, 900_000);
  try {
    await run("warm-up", undefined, "hello"); // first-request costs do not count
    const results: Record<string, unknown> = {};
    console.log("\nbench:sessions:large (wrangler dev, scripted model, no delay)");
    for (const mode of selected) {
      const r = await modes[mode]();
      results[mode] = r;
      const f = (n: number | null) => (n === null ? "-" : n.toFixed(0));
      console.log(
        `  ${mode.padEnd(8)} 202 after ${f(r.acceptedMs)} ms, first delta ${f(r.firstDeltaMs)} ms, turn/completed ${f(r.completedMs)} ms`,
      );
      console.log(
        `           ${r.totalEvents} events for ${r.streamedWords} streamed words (${Object.entries(
          r.events,
        )
          .map(([t, n]) => `${t} ${n}`)
          .join(", ")})`,
      );
      console.log(
        `           stream ${(r.streamBytes / MiB).toFixed(2)} MiB, disk +${(r.diskGrowthBytes / MiB).toFixed(2)} MiB`,
      );
    }
    mkdirSync(join(here, "results"), { recursive: true });
    writeFileSync(
      join(here, "results", "sessions-large.json"),
      `${JSON.stringify(results, null, 2)}\n`,
    );
  } finally {
    clearTimeout(guard);
    await server.stop();
  }
}

await main();
