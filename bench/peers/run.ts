/**
 * `npm run bench:peers`: our worker against a stock Cloudflare Agents SDK `AIChatAgent`
 * (bench/peers/src/server.ts), both under `wrangler dev` on the same workerd, measured
 * side by side and INTERLEAVED in one run (rounds alternate between the two, and which side
 * goes first alternates too), so that machine load hits both alike.
 *
 * - Ours is driven as a web app drives it: POST /v1/sessions, POST …/messages, and
 *   `turn/completed` observed on an open EventSource-style SSE stream of …/events.
 * - The peer is driven over its WebSocket chat protocol as `useAgentChat` does: one socket per
 *   chat, `cf_agent_use_chat_request` frames carrying the whole UI transcript, the turn done
 *   on the `cf_agent_use_chat_response` frame with `done: true`.
 *
 * Both models do the same work: `You said: <message>` in 7 word deltas, no delay; both persist
 * every message. The run checks and prints that (same reply text, same delta count), and
 * that both transcripts survive a crash (SIGKILL, restart on the same persist dir, read back).
 * Metrics: turn p50/p99 sequential on one session (and the workerd CPU each side spent per
 * turn, from /proc); turns/s and turn p50 with 8 and with 32 sessions at once; sessions created + first turn done per second; reconnect to a 20-turn
 * transcript p50, each side as its own client reloads (ours: the shipped client's `events()`,
 * one EventSource-view request that sends the catch-up and stays live, run from src/client
 * bundled by esbuild; theirs: WebSocket + /get-messages at once), clock stopped when the whole
 * transcript is in hand on a live connection; memory of an idle and of a busy agent (workerd
 * RSS by difference, the same way on both sides). Prints absolute numbers and ratios ours/CF,
 * and each side's reconnect request pattern; saves bench/results/peers.json.
 * Loopback only, bounded loops, exits by itself (a guard kills everything after 8 minutes).
 * Run from the repository root (it uses the root's wrangler, hence the same workerd).
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createParser } from "eventsource-parser";
import { type DevServer, startDevServer } from "../../test/support/dev-server.ts";
import { workerdCpuMs } from "../process-cpu.ts";
import { resetPeak, workerdMemory } from "../process-memory.ts";
import { loadSessionClient } from "../support/client-bundle.ts";
import { AUTH, percentile, postJson as post } from "../support/session-http.ts";

const here = dirname(fileURLToPath(import.meta.url));
const num = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`);
  return value;
};
const SEQUENTIAL_TURNS = num("PEERS_SEQUENTIAL_TURNS", 40);
const CONCURRENT_ROUNDS = num("PEERS_CONCURRENT_ROUNDS", 3);
const TURNS_PER_ROUND = num("PEERS_TURNS_PER_ROUND", 32);
const CREATE_ROUNDS = num("PEERS_CREATE_ROUNDS", 3);
const CREATES_PER_ROUND = num("PEERS_CREATES_PER_ROUND", 10);
const CREATE_IN_FLIGHT = 8;
const TRANSCRIPT_TURNS = 20;
const RECONNECTS = num("PEERS_RECONNECTS", 30);
const WAIT_MS = 30_000;
const GUARD_MS = 8 * 60_000;
const EXPECTED_DELTAS = 7;

/** The message of a turn: five words, so that `You said: <message>` is seven word deltas. */
const messageText = (n: number) => `hello from the bench ${n}`;
const expectedReply = (n: number) => `You said: ${messageText(n)}`;

function withTimeout<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const randomId = () => Math.random().toString(36).slice(2, 10);

/** What a finished turn looked like to the client. */
interface TurnResult {
  ms: number;
  reply: string;
  /** Delta events (ours) or text-delta chunks (peer) the client received for this turn. */
  deltaEvents: number;
  /** Their texts joined. */
  deltaText: string;
}

interface ChatSession {
  turn(n: number): Promise<TurnResult>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------
// Ours: HTTP API + an EventSource-style SSE stream per session.

interface StreamEvent {
  offset: number;
  type: string;
  payload: Record<string, unknown>;
}

/** Follows `/v1/sessions/:id/events` as EventSource does, reconnecting with Last-Event-ID. */
class EventFollower {
  readonly #controller = new AbortController();
  readonly #onEvent: (event: StreamEvent) => void;
  #lastId: string | null = null;
  #closed = false;
  readonly #pump: Promise<void>;
  readonly opened: Promise<void>;

  constructor(base: string, id: string, onEvent: (event: StreamEvent) => void) {
    this.#onEvent = onEvent;
    let opened!: () => void;
    let failed!: (error: unknown) => void;
    this.opened = new Promise((resolve, reject) => {
      opened = resolve;
      failed = reject;
    });
    this.#pump = this.#run(`${base}/v1/sessions/${id}/events`, opened).catch((error) => {
      failed(error);
      if (!this.#closed) console.error(`SSE of session ${id} failed:`, error);
    });
  }

  async #run(url: string, opened: () => void): Promise<void> {
    for (let attempt = 0; !this.#closed; attempt++) {
      if (attempt > 100) throw new Error("SSE reconnected more than 100 times");
      const headers: Record<string, string> = { ...AUTH, accept: "text/event-stream" };
      if (this.#lastId !== null) headers["last-event-id"] = this.#lastId;
      let res: Response;
      try {
        res = await fetch(url, { headers, signal: this.#controller.signal });
      } catch (error) {
        if (this.#closed) return;
        throw error;
      }
      if (res.status !== 200) throw new Error(`SSE ${url}: ${res.status} ${await res.text()}`);
      opened();
      const parser = createParser({
        onEvent: (e) => {
          if (e.id !== undefined) this.#lastId = e.id;
          this.#onEvent(JSON.parse(e.data) as StreamEvent);
        },
      });
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break; // the server closes SSE after SSE_MAX_DURATION_MS: reconnect
          parser.feed(decoder.decode(value, { stream: true }));
        }
      } catch (error) {
        if (this.#closed) return;
        throw error;
      }
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#controller.abort();
    await this.#pump;
  }
}

class OursSession implements ChatSession {
  #completed = 0;
  #waiter: { count: number; done: (reply: string) => void } | null = null;
  #deltas: string[] = [];
  #lastReply = "";
  readonly #base: string;
  readonly id: string;
  readonly #events: EventFollower;

  private constructor(base: string, id: string) {
    this.#base = base;
    this.id = id;
    this.#events = new EventFollower(base, id, (event) => this.#onEvent(event));
  }

  static async create(base: string, title: string): Promise<OursSession> {
    const res = await post(base, "/v1/sessions", { title });
    const { session } = (await res.json()) as { session: { id: string } };
    const created = new OursSession(base, session.id);
    await withTimeout(created.#events.opened, "opening the session's SSE");
    return created;
  }

  #onEvent(event: StreamEvent): void {
    if (event.type.endsWith("/delta-produced") || event.type.endsWith("/deltas-produced")) {
      this.#deltas.push(deltaTextOf(event.payload));
    }
    // The reply is the turn's last model/request-completed; turn/completed references it
    // (events written before that change also embedded it as `text`).
    if (event.type === "model/request-completed")
      this.#lastReply = String(event.payload.text ?? "");
    if (event.type !== "turn/completed") return;
    this.#completed += 1;
    const waiter = this.#waiter;
    if (waiter && this.#completed >= waiter.count) {
      this.#waiter = null;
      waiter.done(String(event.payload.text ?? this.#lastReply));
    }
  }

  async turn(n: number): Promise<TurnResult> {
    this.#deltas = [];
    const start = performance.now();
    const reply = new Promise<string>((resolve) => {
      this.#waiter = { count: this.#completed + 1, done: resolve };
    });
    const res = await post(this.#base, `/v1/sessions/${this.id}/messages`, {
      content: messageText(n),
    });
    await res.body?.cancel();
    const text = await withTimeout(reply, `turn/completed of session ${this.id}`);
    const ms = performance.now() - start;
    return { ms, reply: text, deltaEvents: this.#deltas.length, deltaText: this.#deltas.join("") };
  }

  close(): Promise<void> {
    return this.#events.close();
  }
}

/** The text a delta event carries, whether one delta (`text`) or coalesced ones (`texts`/`text`). */
function deltaTextOf(payload: Record<string, unknown>): string {
  if (typeof payload.text === "string") return payload.text;
  if (Array.isArray(payload.texts)) return payload.texts.join("");
  if (Array.isArray(payload.deltas)) return payload.deltas.map((d) => String(d)).join("");
  return "";
}

/** Reads a session's whole log with Durable Streams catch-up reads (`offset=-1`, paged). */
async function readOursLog(
  base: string,
  id: string,
): Promise<{ events: StreamEvent[]; next: string }> {
  const events: StreamEvent[] = [];
  let offset = "-1";
  for (let page = 0; page < 1000; page++) {
    const res = await fetch(`${base}/v1/sessions/${id}/events?offset=${offset}`, {
      headers: AUTH,
    });
    if (res.status !== 200) throw new Error(`catch-up read: ${res.status} ${await res.text()}`);
    events.push(...((await res.json()) as StreamEvent[]));
    offset = res.headers.get("stream-next-offset") ?? offset;
    if (res.headers.get("stream-up-to-date") === "true") return { events, next: offset };
  }
  throw new Error("catch-up read did not reach the tail in 1000 pages");
}

/** The request pattern each side's reconnect uses (printed with the results). */
const RECONNECT_PATTERN = {
  ours: "1 request: GET /v1/sessions/:id/events, Accept: text/event-stream (the shipped client's events(), as the console reloads): catch-up then live on the same response",
  cf: "2 requests at once: WebSocket /agents/chat-agent/:name + GET …/get-messages (as useAgentChat reloads)",
} as const;

type Client = Awaited<ReturnType<typeof loadSessionClient>>;

interface OursReconnect {
  /** Until the whole transcript (all its turn/completed) arrived on the open connection. */
  ms: number;
  /** Until the response's headers arrived. */
  headersMs: number;
  /** Body chunks the client read until then (how the catch-up was cut on the wire). */
  bodyChunks: number;
  /** SSE events (session events) received until then. */
  events: number;
}

/**
 * A reloading web page, as the console does it (console/src/use-session-view.ts, no saved
 * snapshot): a new SessionClient and its `events(id)` from the start: ONE request, whose
 * response sends the catch-up and then stays open, live. The clock stops when the whole
 * transcript (all 20 turn/completed) has arrived on that connection, which is still open:
 * the point the CF side reaches with its socket open and /get-messages answered.
 */
async function reconnectOurs(client: Client, base: string, id: string): Promise<OursReconnect> {
  const start = performance.now();
  let requests = 0;
  let headersMs = Number.NaN;
  let bodyChunks = 0;
  const sessions = new client.SessionClient({
    baseUrl: base,
    token: AUTH.authorization.slice("Bearer ".length),
    fetch: async (request) => {
      requests++;
      const response = await fetch(request);
      headersMs = performance.now() - start;
      if (!response.body) return response;
      const counted = response.body.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            bodyChunks++;
            controller.enqueue(chunk);
          },
        }),
      );
      return new Response(counted, { status: response.status, headers: response.headers });
    },
  });
  let turns = 0;
  let events = 0;
  let ms = Number.NaN;
  for await (const event of sessions.events(id, {
    onReconnect: ({ error }) => {
      throw new Error(`ours: the reconnect had to reconnect again: ${String(error)}`);
    },
  })) {
    events++;
    if (event.type === "turn/completed" && ++turns === TRANSCRIPT_TURNS) {
      ms = performance.now() - start;
      break; // closes the connection (the page would stay on it, live)
    }
  }
  if (turns !== TRANSCRIPT_TURNS) throw new Error(`ours: ${turns} turns read back, not 20`);
  if (requests !== 1) throw new Error(`ours: the reconnect took ${requests} requests, not 1`);
  return { ms, headersMs, bodyChunks, events };
}

/**
 * For comparison only (the pattern this bench used before; no client of ours reloads so):
 * a paged JSON catch-up read, then a second request for live SSE where the read ended.
 */
async function reconnectOursTwoRequests(base: string, id: string): Promise<number> {
  const start = performance.now();
  const { events, next } = await readOursLog(base, id);
  const controller = new AbortController();
  const live = await fetch(`${base}/v1/sessions/${id}/events?offset=${next}&live=sse`, {
    headers: AUTH,
    signal: controller.signal,
  });
  if (live.status !== 200) throw new Error(`live SSE: ${live.status}`);
  const ms = performance.now() - start;
  controller.abort();
  await live.body?.cancel().catch(() => undefined);
  const turns = events.filter((e) => e.type === "turn/completed").length;
  if (turns !== TRANSCRIPT_TURNS) throw new Error(`ours: ${turns} turns read back, not 20`);
  return ms;
}

// ---------------------------------------------------------------------------------------
// The peer: the AIChatAgent WebSocket chat protocol, as useAgentChat speaks it.

interface UiMessage {
  id: string;
  role: "user" | "assistant";
  parts: Array<Record<string, unknown>>;
}

interface PendingRequest {
  chunks: Array<Record<string, unknown>>;
  done: () => void;
  fail: (error: Error) => void;
}

const wsUrl = (base: string, name: string) =>
  `${base.replace(/^http/, "ws")}/agents/chat-agent/${encodeURIComponent(name)}`;

function openSocket(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.addEventListener("open", () => resolve(ws), { once: true });
    ws.addEventListener("error", () => reject(new Error(`WebSocket ${url} failed`)), {
      once: true,
    });
  });
}

class PeerSession implements ChatSession {
  /** The client's copy of the transcript, sent whole with every request (as useChat does). */
  readonly messages: UiMessage[] = [];
  readonly #pending = new Map<string, PendingRequest>();
  readonly #ws: WebSocket;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.addEventListener("message", (event) => this.#onFrame(String(event.data)));
    ws.addEventListener("close", () => {
      for (const request of this.#pending.values()) request.fail(new Error("socket closed"));
      this.#pending.clear();
    });
  }

  static async open(base: string, name: string): Promise<PeerSession> {
    return new PeerSession(await withTimeout(openSocket(wsUrl(base, name)), "WebSocket open"));
  }

  #onFrame(data: string): void {
    const frame = JSON.parse(data) as {
      type?: string;
      id?: string;
      body?: string;
      done?: boolean;
      error?: boolean;
    };
    if (frame.type !== "cf_agent_use_chat_response" || frame.id === undefined) return;
    const request = this.#pending.get(frame.id);
    if (!request) return;
    if (frame.error) {
      this.#pending.delete(frame.id);
      request.fail(new Error(`peer turn failed: ${frame.body}`));
      return;
    }
    if (frame.body?.trim()) request.chunks.push(JSON.parse(frame.body) as Record<string, unknown>);
    if (frame.done) {
      this.#pending.delete(frame.id);
      request.done();
    }
  }

  async turn(n: number): Promise<TurnResult> {
    const user: UiMessage = {
      id: randomId(),
      role: "user",
      parts: [{ type: "text", text: messageText(n) }],
    };
    this.messages.push(user);
    const requestId = randomId();
    const chunks: Array<Record<string, unknown>> = [];
    const start = performance.now();
    const finished = new Promise<void>((done, fail) => {
      this.#pending.set(requestId, { chunks, done, fail });
    });
    this.#ws.send(
      JSON.stringify({
        id: requestId,
        init: {
          method: "POST",
          body: JSON.stringify({ messages: this.messages, trigger: "submit-message" }),
        },
        type: "cf_agent_use_chat_request",
      }),
    );
    await withTimeout(finished, `peer turn ${requestId}`);
    const ms = performance.now() - start;
    // Build the assistant message from the UI message stream, as useChat does.
    const deltas = chunks.filter((c) => c.type === "text-delta").map((c) => String(c.delta));
    const reply = deltas.join("");
    const startChunk = chunks.find((c) => c.type === "start");
    this.messages.push({
      id: typeof startChunk?.messageId === "string" ? startChunk.messageId : randomId(),
      role: "assistant",
      parts: [{ type: "step-start" }, { type: "text", text: reply, state: "done" }],
    });
    return { ms, reply, deltaEvents: deltas.length, deltaText: reply };
  }

  async close(): Promise<void> {
    if (this.#ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((resolve) =>
      this.#ws.addEventListener("close", () => resolve(), { once: true }),
    );
    this.#ws.close();
    await withTimeout(closed, "WebSocket close", 5_000).catch(() => undefined);
  }
}

async function readPeerMessages(base: string, name: string): Promise<UiMessage[]> {
  const res = await fetch(`${wsUrl(base, name).replace(/^ws/, "http")}/get-messages`);
  if (res.status !== 200) throw new Error(`get-messages: ${res.status} ${await res.text()}`);
  return (await res.json()) as UiMessage[];
}

/** A reloading useAgentChat: opens the socket and fetches /get-messages, both at once. */
async function reconnectPeer(base: string, name: string): Promise<number> {
  const start = performance.now();
  const [ws, messages] = await Promise.all([
    openSocket(wsUrl(base, name)),
    readPeerMessages(base, name),
  ]);
  const ms = performance.now() - start;
  ws.close();
  if (messages.length !== 2 * TRANSCRIPT_TURNS) {
    throw new Error(`peer: ${messages.length} messages read back, not ${2 * TRANSCRIPT_TURNS}`);
  }
  return ms;
}

// ---------------------------------------------------------------------------------------
// Memory: RSS of each side's workerd processes (Linux /proc), measured the same way on both.

const MEMORY_SESSIONS = num("PEERS_MEMORY_SESSIONS", 16);
const MEMORY_BUSY_TURNS = 3;
const MEMORY_SETTLE_MS = 2_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function rssKiB(group: number | undefined): { rss: number; hwm: number } | null {
  const processes = workerdMemory(group);
  if (processes === null) return null;
  return {
    rss: processes.reduce((n, p) => n + p.rssKiB, 0),
    hwm: processes.reduce((n, p) => n + p.hwmKiB, 0),
  };
}

/** After a settle time, the median RSS of 5 samples 100 ms apart (V8 frees lazily). */
async function settledRssKiB(group: number | undefined): Promise<number | null> {
  await sleep(MEMORY_SETTLE_MS);
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    const m = rssKiB(group);
    if (m === null) return null;
    samples.push(m.rss);
    await sleep(100);
  }
  return median(samples);
}

interface MemoryResult {
  /** Settled RSS before the sessions existed. */
  baseKiB: number;
  /** Per session, idle: settled RSS with MEMORY_SESSIONS sessions (one turn each, client still connected) minus base, divided by their number. */
  idlePerSessionKiB: number;
  /** Per session, busy: the peak RSS while every one of them runs turns at once, minus base, divided by their number. */
  busyPerSessionKiB: number;
}

/**
 * Memory of an idle and of a busy agent, by difference of the side's workerd RSS (every
 * Durable Object of a side lives in its one workerd process, so one object cannot be read
 * alone; the isolate's V8 heap over the inspector is no better: workerd's inspector does not
 * answer HeapProfiler.collectGarbage, so heap readings carry uncollected garbage of several
 * MB, and per-session differences came out negative): MEMORY_SESSIONS new sessions, one turn each, then idle (clients connected: our SSE,
 * their WebSocket); then all of them running MEMORY_BUSY_TURNS turns back to back at once,
 * with VmHWM reset before (clear_refs), so the peak between samples counts too. Ours is a
 * SessionAgent plus its session's Stream DO; theirs one AIChatAgent.
 */
async function measureMemory(servers: Servers, side: Side): Promise<MemoryResult | null> {
  const group = servers[side].child.pid;
  const base = await settledRssKiB(group);
  if (base === null) return null;
  const sessions = await Promise.all(
    Array.from({ length: MEMORY_SESSIONS }, (_, i) =>
      openSession(servers, side, `memory-${i}-${randomId()}`),
    ),
  );
  try {
    await concurrentRound(sessions, MEMORY_SESSIONS);
    const idle = await settledRssKiB(group);
    if (idle === null) return null;
    const peakAllowed = resetPeak(group);
    let peak = 0;
    const sampling = setInterval(() => {
      peak = Math.max(peak, rssKiB(group)?.rss ?? 0);
    }, 20);
    try {
      await concurrentRound(sessions, MEMORY_SESSIONS * MEMORY_BUSY_TURNS);
    } finally {
      clearInterval(sampling);
    }
    const after = rssKiB(group);
    peak = Math.max(peak, after?.rss ?? 0, peakAllowed ? (after?.hwm ?? 0) : 0);
    return {
      baseKiB: base,
      idlePerSessionKiB: (idle - base) / MEMORY_SESSIONS,
      busyPerSessionKiB: (peak - base) / MEMORY_SESSIONS,
    };
  } finally {
    await Promise.all(sessions.map((s) => s.close()));
  }
}

// ---------------------------------------------------------------------------------------
// The run.

type Side = "ours" | "cf";
const SIDES: Side[] = ["ours", "cf"];
/** Alternates which side goes first, so neither always runs right after the other. */
const order = (round: number): Side[] => (round % 2 === 0 ? SIDES : [...SIDES].reverse());

interface Servers {
  ours: DevServer;
  cf: DevServer;
}

const peerConfig = join(here, "wrangler.toml");

function startOurs(persistDir?: string): Promise<DevServer> {
  return startDevServer({
    migrate: true,
    vars: { SCRIPTED_MODEL_DELAY_MS: "0" },
    ...(persistDir ? { persistDir } : {}),
  });
}

function startPeer(persistDir?: string): Promise<DevServer> {
  return startDevServer({ config: peerConfig, ...(persistDir ? { persistDir } : {}) });
}

function openSession(servers: Servers, side: Side, name: string): Promise<ChatSession> {
  return side === "ours"
    ? OursSession.create(servers.ours.url, name)
    : PeerSession.open(servers.cf.url, name);
}

let turnCounter = 1_000;

/** `sessions` chats at once, each running its share of `total` turns back to back. */
async function concurrentRound(
  sessions: ChatSession[],
  total: number,
): Promise<{ seconds: number; latencies: number[] }> {
  const latencies: number[] = [];
  const perSession = Math.ceil(total / sessions.length);
  const start = performance.now();
  await Promise.all(
    sessions.map(async (session) => {
      for (let i = 0; i < perSession; i++) latencies.push((await session.turn(turnCounter++)).ms);
    }),
  );
  return { seconds: (performance.now() - start) / 1000, latencies };
}

/** Creates `count` chats, `CREATE_IN_FLIGHT` at a time, each until its first turn is done. */
async function createRound(servers: Servers, side: Side, round: number): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CREATE_IN_FLIGHT }, async () => {
      while (next < CREATES_PER_ROUND) {
        const n = next++;
        const session = await openSession(servers, side, `create-${round}-${n}-${randomId()}`);
        const result = await session.turn(n);
        if (result.reply !== expectedReply(n)) throw new Error(`${side}: wrong first reply`);
        await session.close();
      }
    }),
  );
  return CREATES_PER_ROUND / ((performance.now() - start) / 1000);
}

const median = (values: number[]) => percentile(values, 50);

async function main() {
  if (!existsSync(join(process.cwd(), "node_modules", ".bin", "wrangler"))) {
    throw new Error("run from the repository root (npm run bench:peers)");
  }
  const startedAt = new Date().toISOString();
  const client = await loadSessionClient();
  const loadBefore = loadavg();
  console.log(`bench:peers: starting both servers (load average ${loadBefore[0]?.toFixed(2)})`);
  const [ours, cf] = await Promise.all([startOurs(), startPeer()]);
  const servers: Servers = { ours, cf };
  const guard = setTimeout(() => {
    console.error("bench:peers exceeded its time limit");
    void Promise.all([servers.ours.stop("SIGKILL"), servers.cf.stop("SIGKILL")]).then(() =>
      process.exit(1),
    );
  }, GUARD_MS);
  try {
    // Fairness and warm-up: the same message on both sides, then a few unmeasured turns.
    const seq: Record<Side, ChatSession> = {
      ours: await openSession(servers, "ours", "sequential"),
      cf: await openSession(servers, "cf", `sequential-${randomId()}`),
    };
    const first: Record<Side, TurnResult> = {
      ours: await seq.ours.turn(0),
      cf: await seq.cf.turn(0),
    };
    const fairness = {
      replyOurs: first.ours.reply,
      replyCf: first.cf.reply,
      sameReply: first.ours.reply === first.cf.reply && first.ours.reply === expectedReply(0),
      deltaEventsOurs: first.ours.deltaEvents,
      deltaTextMatchesOurs: first.ours.deltaText === first.ours.reply,
      deltaChunksCf: first.cf.deltaEvents,
      modelDeltas: expectedReply(0).split(/(?<=\s)(?=\S)/).length,
    };
    console.log("\nfairness");
    console.log(`  reply ours: ${JSON.stringify(fairness.replyOurs)}`);
    console.log(`  reply CF:   ${JSON.stringify(fairness.replyCf)}`);
    console.log(`  same reply text: ${fairness.sameReply ? "yes" : "NO"}`);
    console.log(
      `  word deltas: ours ${fairness.deltaEventsOurs} delta event(s) joining to the reply: ${fairness.deltaTextMatchesOurs ? "yes" : "NO"}; CF ${fairness.deltaChunksCf} text-delta chunks; both models emit ${fairness.modelDeltas} (expected ${EXPECTED_DELTAS})`,
    );
    if (!fairness.sameReply || fairness.deltaChunksCf !== EXPECTED_DELTAS) {
      throw new Error("the two sides do not do the same model work; numbers would mean nothing");
    }
    for (let i = 1; i <= 5; i++) for (const side of SIDES) await seq[side].turn(i);

    // 1. Sequential turns on one session, alternating turn by turn.
    // Also the CPU the side's workerd used during its own turns (wall time hides it on a
    // loaded machine; workerd's clock stops during compute). Linux only; 10 ms ticks.
    const sequential: Record<Side, number[]> = { ours: [], cf: [] };
    const cpu: Record<Side, number | null> = { ours: 0, cf: 0 };
    for (let i = 0; i < SEQUENTIAL_TURNS; i++) {
      for (const side of order(i)) {
        const group = servers[side].child.pid;
        const before = workerdCpuMs(group);
        sequential[side].push((await seq[side].turn(100 + i)).ms);
        const after = workerdCpuMs(group);
        cpu[side] =
          before === null || after === null || cpu[side] === null
            ? null
            : cpu[side] + after - before;
      }
    }
    console.log(`\nsequential: ${SEQUENTIAL_TURNS} turns each, done`);

    // 2. 8 and 32 sessions at once, rounds alternating.
    const concurrent: Record<
      string,
      Record<Side, { turnsPerSecond: number[]; latencies: number[] }>
    > = {};
    for (const width of [8, 32]) {
      const pool: Record<Side, ChatSession[]> = { ours: [], cf: [] };
      for (const side of SIDES) {
        pool[side] = await Promise.all(
          Array.from({ length: width }, (_, i) =>
            openSession(servers, side, `c${width}-${i}-${randomId()}`),
          ),
        );
        // One unmeasured turn each, so that every Durable Object is warm.
        await concurrentRound(pool[side], width);
      }
      const stats: Record<Side, { turnsPerSecond: number[]; latencies: number[] }> = {
        ours: { turnsPerSecond: [], latencies: [] },
        cf: { turnsPerSecond: [], latencies: [] },
      };
      for (let round = 0; round < CONCURRENT_ROUNDS; round++) {
        for (const side of order(round)) {
          const { seconds, latencies } = await concurrentRound(pool[side], TURNS_PER_ROUND);
          stats[side].turnsPerSecond.push(latencies.length / seconds);
          stats[side].latencies.push(...latencies);
        }
      }
      for (const side of SIDES) await Promise.all(pool[side].map((s) => s.close()));
      concurrent[String(width)] = stats;
      console.log(`${width} sessions at once: ${CONCURRENT_ROUNDS} rounds each, done`);
    }

    // 3. Create + first turn done, per second.
    const creates: Record<Side, number[]> = { ours: [], cf: [] };
    for (let round = 0; round < CREATE_ROUNDS; round++) {
      for (const side of order(round)) creates[side].push(await createRound(servers, side, round));
    }
    console.log(`create + first turn: ${CREATE_ROUNDS} rounds of ${CREATES_PER_ROUND} each, done`);

    // 4. Reconnect to a 20-turn transcript.
    const transcriptName = `transcript-${randomId()}`;
    const transcript: Record<Side, ChatSession> = {
      ours: await openSession(servers, "ours", "transcript"),
      cf: await openSession(servers, "cf", transcriptName),
    };
    for (let i = 0; i < TRANSCRIPT_TURNS; i++) {
      for (const side of SIDES) await transcript[side].turn(200 + i);
    }
    const oursTranscriptId = (transcript.ours as OursSession).id;
    for (const side of SIDES) await transcript[side].close();
    const reconnects: Record<Side, number[]> = { ours: [], cf: [] };
    const oursReconnects: OursReconnect[] = [];
    const oursTwoRequests: number[] = [];
    for (let i = 0; i < RECONNECTS; i++) {
      for (const side of order(i)) {
        if (side === "ours") {
          const sample = await reconnectOurs(client, servers.ours.url, oursTranscriptId);
          oursReconnects.push(sample);
          reconnects.ours.push(sample.ms);
          oursTwoRequests.push(await reconnectOursTwoRequests(servers.ours.url, oursTranscriptId));
        } else reconnects.cf.push(await reconnectPeer(servers.cf.url, transcriptName));
      }
    }
    const reconnectDetail = {
      pattern: RECONNECT_PATTERN,
      oursHeadersP50: median(oursReconnects.map((r) => r.headersMs)),
      oursBodyChunksP50: median(oursReconnects.map((r) => r.bodyChunks)),
      oursEvents: oursReconnects[0]?.events ?? 0,
      oursTwoRequestsP50: median(oursTwoRequests),
    };
    console.log(`reconnect: ${RECONNECTS} each, done`);
    console.log(`  ours: ${RECONNECT_PATTERN.ours}`);
    console.log(
      `        headers after ${reconnectDetail.oursHeadersP50.toFixed(1)} ms (p50), ${reconnectDetail.oursEvents} events of the client view in ${reconnectDetail.oursBodyChunksP50} body chunk(s) (p50) until the 20th turn/completed`,
    );
    console.log(`  CF:   ${RECONNECT_PATTERN.cf}`);
    console.log(
      `  for comparison, ours with 2 sequential requests (paged JSON catch-up, then ?live=sse): p50 ${reconnectDetail.oursTwoRequestsP50.toFixed(1)} ms`,
    );
    for (const side of SIDES) await seq[side].close();

    // 5. Memory of an idle and of a busy agent, each side on its own (the other side idle).
    const memory: Record<Side, MemoryResult | null> = {
      ours: await measureMemory(servers, "ours"),
      cf: await measureMemory(servers, "cf"),
    };
    console.log(
      `memory: ${MEMORY_SESSIONS} sessions per side, idle then ${MEMORY_BUSY_TURNS} turns each at once, done`,
    );
    console.log(
      "  per session = Δ of the side's workerd RSS (/proc VmRSS, busy: peak incl. VmHWM) over the sessions; ours = SessionAgent + its Stream DO, CF = one AIChatAgent; process-level, so noisy: compare within one run",
    );

    // 6. Both transcripts survive a crash: SIGKILL, restart on the same data, read back.
    const before = {
      ours: turnTexts((await readOursLog(servers.ours.url, oursTranscriptId)).events),
      cf: await readPeerMessages(servers.cf.url, transcriptName),
    };
    await Promise.all([servers.ours.stop("SIGKILL"), servers.cf.stop("SIGKILL")]);
    [servers.ours, servers.cf] = await Promise.all([
      startOurs(servers.ours.persistDir),
      startPeer(servers.cf.persistDir),
    ]);
    const after = {
      ours: turnTexts((await readOursLog(servers.ours.url, oursTranscriptId)).events),
      cf: await readPeerMessages(servers.cf.url, transcriptName),
    };
    const survives = {
      ours:
        after.ours.length === TRANSCRIPT_TURNS &&
        JSON.stringify(after.ours) === JSON.stringify(before.ours) &&
        after.ours.every((text, i) => text === expectedReply(200 + i)),
      cf:
        after.cf.length === 2 * TRANSCRIPT_TURNS &&
        JSON.stringify(after.cf) === JSON.stringify(before.cf),
    };
    console.log("\nrestart (SIGKILL, then the same persist dir)");
    console.log(
      `  ours: ${after.ours.length}/${TRANSCRIPT_TURNS} turns read back, identical: ${survives.ours ? "yes" : "NO"}`,
    );
    console.log(
      `  CF:   ${after.cf.length}/${2 * TRANSCRIPT_TURNS} messages read back, identical: ${survives.cf ? "yes" : "NO"}`,
    );

    // Report.
    const rows: Array<{ metric: string; ours: number; cf: number; unit: string; lower: boolean }> =
      [
        row(
          "turn p50, sequential, one session",
          median(sequential.ours),
          median(sequential.cf),
          "ms",
          true,
        ),
        row(
          "turn p99, sequential",
          percentile(sequential.ours, 99),
          percentile(sequential.cf, 99),
          "ms",
          true,
        ),
      ];
    if (cpu.ours !== null && cpu.cf !== null) {
      rows.push(
        row(
          "workerd CPU per sequential turn",
          cpu.ours / SEQUENTIAL_TURNS,
          cpu.cf / SEQUENTIAL_TURNS,
          "ms",
          true,
        ),
      );
    }
    for (const width of ["8", "32"]) {
      const s = concurrent[width]!;
      rows.push(
        row(
          `turns/s, ${width} sessions at once`,
          median(s.ours.turnsPerSecond),
          median(s.cf.turnsPerSecond),
          "/s",
          false,
        ),
        row(
          `turn p50, ${width} sessions at once`,
          median(s.ours.latencies),
          median(s.cf.latencies),
          "ms",
          true,
        ),
      );
    }
    rows.push(
      row("create + first turn done, per s", median(creates.ours), median(creates.cf), "/s", false),
      row(
        "reconnect to a 20-turn transcript, p50",
        median(reconnects.ours),
        median(reconnects.cf),
        "ms",
        true,
      ),
    );
    const memoryRows =
      memory.ours && memory.cf
        ? [
            row(
              "memory per idle session (workerd RSS Δ)",
              memory.ours.idlePerSessionKiB,
              memory.cf.idlePerSessionKiB,
              "KiB",
              true,
            ),
            row(
              "memory per busy session (peak RSS Δ)",
              memory.ours.busyPerSessionKiB,
              memory.cf.busyPerSessionKiB,
              "KiB",
              true,
            ),
            row(
              "workerd RSS before (base)",
              memory.ours.baseKiB / 1024,
              memory.cf.baseKiB / 1024,
              "MiB",
              true,
            ),
          ]
        : [];
    rows.push(...memoryRows);
    const loadAfter = loadavg();
    console.log(
      `\nbench:peers — both under wrangler dev on this machine (${cpus().length} CPUs, load average ${loadBefore[0]?.toFixed(2)} → ${loadAfter[0]?.toFixed(2)}), interleaved rounds`,
    );
    console.log("| metric | ours | CF Agents | ours/CF |");
    console.log("|---|---|---|---|");
    for (const r of rows) {
      const ratio = r.ours / r.cf;
      const ahead = r.lower ? ratio < 1 : ratio > 1;
      // A memory Δ at or below zero is the process's noise, not a measurement: no ratio.
      const shown =
        r.ours > 0 && r.cf > 0
          ? `${ratio.toFixed(2)}${ahead ? " (ahead)" : ""}`
          : "n/a (a Δ ≤ 0 is noise)";
      console.log(`| ${r.metric} | ${fmt(r.ours, r.unit)} | ${fmt(r.cf, r.unit)} | ${shown} |`);
    }
    const result = {
      startedAt,
      cpus: cpus().length,
      loadAverage: { before: loadBefore, after: loadAfter },
      settings: {
        SEQUENTIAL_TURNS,
        CONCURRENT_ROUNDS,
        TURNS_PER_ROUND,
        CREATE_ROUNDS,
        CREATES_PER_ROUND,
        CREATE_IN_FLIGHT,
        TRANSCRIPT_TURNS,
        RECONNECTS,
      },
      fairness: { ...fairness, transcriptSurvivesRestart: survives },
      rows: rows.map((r) => ({ ...r, ratio: r.ours / r.cf })),
      reconnect: reconnectDetail,
      memory: {
        method:
          "Linux /proc VmRSS (and VmHWM after clear_refs) summed over each side's workerd processes; per session = (RSS with the sessions − RSS before) / their number. Ours = SessionAgent + its Stream DO; CF = one AIChatAgent.",
        sessions: MEMORY_SESSIONS,
        busyTurnsEach: MEMORY_BUSY_TURNS,
        ...memory,
      },
      samples: { sequential, concurrent, creates, reconnects, oursReconnects, oursTwoRequests },
    };
    mkdirSync(join(here, "..", "results"), { recursive: true });
    const file = join(here, "..", "results", "peers.json");
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`\nsaved ${file}`);
    if (!survives.ours || !survives.cf) process.exitCode = 1;
  } finally {
    clearTimeout(guard);
    await Promise.all([servers.ours.stop(), servers.cf.stop()]);
  }
}

function row(metric: string, ours: number, cf: number, unit: string, lower: boolean) {
  return { metric, ours, cf, unit, lower };
}

function fmt(value: number, unit: string): string {
  if (unit === "ms") return `${value.toFixed(1)} ms`;
  if (unit === "KiB" || unit === "MiB") return `${value.toFixed(0)} ${unit}`;
  return value.toFixed(2);
}

/** Each turn's reply: the last model/request-completed before its turn/completed. */
function turnTexts(events: StreamEvent[]): string[] {
  const texts: string[] = [];
  let last = "";
  for (const e of events) {
    if (e.type === "model/request-completed") last = String(e.payload.text ?? "");
    if (e.type === "turn/completed") texts.push(String(e.payload.text ?? last));
  }
  return texts;
}

await main();
