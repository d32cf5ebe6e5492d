/**
 * `npm run bench:sessions:memory`: resident memory of SessionAgents (issues 9 and 10) against
 * `wrangler dev` with the scripted model at no delay. Reports VmRSS (and VmHWM) of the dev
 * server's workerd processes (bench/process-memory.ts) at:
 * (a) baseline: after start and one warm-up turn;
 * (b) one idle session (created, one short turn, then idle);
 * (e) N more idle sessions (default 20): per-session idle memory = Δ RSS / N;
 * (c) a busy turn: RSS sampled every ~20 ms while a long reply (`reply <bytes>`) streams, and
 *     VmHWM reset before the turn (clear_refs), so the peak between samples counts too;
 * (d) one session grown to a large transcript (default 50 MB) through the public HTTP API
 *     (messages of 1 MiB, stored as chunk events; the scripted reply echoes `You said:
 *     <message>` as the model saw it, i.e. cut to MODEL_CONTENT_MAX_BYTES, 256 KiB by default,
 *     so ~1.3 MB per turn and ~38 turns for 50 MB; the transcript size counts stored replies):
 *     idle RSS after it, the peak during one more short turn on it, and that turn's time next
 *     to a short turn on a fresh session (does per-turn cost grow with the transcript?).
 * workerd hosts the worker and every Durable Object in one process, so memory of one object
 * is a difference of process RSS between two states; V8 does not return every freed page to
 * the OS at once, so idle figures are medians after a settle time, and small deltas are noise.
 * Knobs (env): BENCH_MEMORY_MB (transcript size, default 50), BENCH_MEMORY_MESSAGE_KIB
 * (message size, default 1024, ≤ 8192), BENCH_MEMORY_IDLE_SESSIONS (20),
 * BENCH_MEMORY_REPLY_BYTES (busy reply, 2000000, ≤ 16 MiB), BENCH_MEMORY_SETTLE_MS (3000),
 * BENCH_MEMORY_TIMEOUT_S (300). Runs on Node 22; loopback only; bounded in time; Linux only.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startDevServer } from "../test/support/dev-server.ts";
import { type ProcessMemory, resetPeak, workerdMemory } from "./process-memory.ts";
import { followSse, postJson } from "./support/session-http.ts";

const here = dirname(fileURLToPath(import.meta.url));
const MiB = 1024 * 1024;
const MB = 1_000_000;

function knob(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  const value = raw === undefined || raw === "" ? fallback : Number(raw);
  if (!Number.isFinite(value) || value < min || value > max)
    throw new Error(`${name} must be a number between ${min} and ${max}, got ${raw}`);
  return value;
}

const TRANSCRIPT_MB = knob("BENCH_MEMORY_MB", 50, 1, 500);
// The session API accepts up to 8 MiB of content per message (MAX_INPUT_CONTENT_BYTES).
const MESSAGE_BYTES = Math.round(knob("BENCH_MEMORY_MESSAGE_KIB", 1024, 1, 8192 - 1) * 1024);
const IDLE_SESSIONS = Math.round(knob("BENCH_MEMORY_IDLE_SESSIONS", 20, 0, 500));
// The scripted model's `reply <bytes>` allows up to 16 MiB.
const REPLY_BYTES = Math.round(knob("BENCH_MEMORY_REPLY_BYTES", 2_000_000, 1, 16 * MiB));
const SETTLE_MS = knob("BENCH_MEMORY_SETTLE_MS", 3000, 0, 60_000);
const TIMEOUT_MS = knob("BENCH_MEMORY_TIMEOUT_S", 300, 10, 3600) * 1000;
const TURN_TIMEOUT_MS = 120_000;
const SAMPLE_EVERY_MS = 20;

let base = "";
let group: number | undefined;
let phase = "start";

const post = (path: string, body: unknown) => postJson(base, path, body);

async function createSession(title: string): Promise<string> {
  const res = await post("/v1/sessions", { title });
  return ((await res.json()) as { session: { id: string } }).session.id;
}

interface Snapshot {
  rssKiB: number;
  hwmKiB: number;
  processes: ProcessMemory[];
}

function snapshot(): Snapshot {
  const processes = workerdMemory(group);
  if (processes === null) throw new Error("no workerd process found in the dev server's group");
  return {
    rssKiB: processes.reduce((s, p) => s + p.rssKiB, 0),
    hwmKiB: processes.reduce((s, p) => s + p.hwmKiB, 0),
    processes,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Idle memory: after SETTLE_MS, the median RSS of 5 samples 200 ms apart. */
async function idle(): Promise<Snapshot> {
  await sleep(SETTLE_MS);
  const samples: Snapshot[] = [];
  for (let i = 0; i < 5; i++) {
    if (i > 0) await sleep(200);
    samples.push(snapshot());
  }
  samples.sort((a, b) => a.rssKiB - b.rssKiB);
  return samples[2]!;
}

/** Samples RSS every SAMPLE_EVERY_MS until stopped; VmHWM is reset first where allowed. */
function sampler() {
  const hwmReset = resetPeak(group);
  let peakKiB = snapshot().rssKiB;
  let samples = 0;
  const timer = setInterval(() => {
    try {
      const now = snapshot().rssKiB;
      samples += 1;
      if (now > peakKiB) peakKiB = now;
    } catch {
      // the server is stopping
    }
  }, SAMPLE_EVERY_MS);
  return {
    stop() {
      clearInterval(timer);
      const end = snapshot();
      return {
        sampledPeakKiB: Math.max(peakKiB, end.rssKiB),
        samples,
        /** The processes' own peak since the reset (null if it could not be reset). */
        hwmPeakKiB: hwmReset ? end.hwmKiB : null,
        endKiB: end.rssKiB,
      };
    },
  };
}

/**
 * Follows one session's events over SSE from `offset=now`, so that a turn on a large session
 * does not replay its history. The server ends an SSE response after SSE_MAX_DURATION_MS; the
 * watcher then reconnects with Last-Event-ID, as an EventSource does.
 */
async function watch(id: string) {
  let completed = 0;
  /** UTF-8 bytes of the last completed turn's reply (inline or chunked). */
  let lastReplyBytes = 0;
  /** UTF-8 bytes of the last model/request-completed reply. */
  let requestReplyBytes = 0;
  let failure: Error | null = null;
  let wake: () => void = () => undefined;
  const sse = await followSse(
    (lastId) => `${base}/v1/sessions/${id}/events${lastId === null ? "?offset=now" : ""}`,
    (e) => {
      const event = JSON.parse(e.data) as {
        type?: string;
        payload?: { text?: string; textRef?: { bytes: number } };
      };
      // The client view's turn/completed names only its turn; the reply is the turn's last
      // model/request-completed (events written before that change repeated it).
      const p = event.payload;
      const bytes = p?.textRef?.bytes ?? Buffer.byteLength(p?.text ?? "");
      if (event.type === "model/request-completed") requestReplyBytes = bytes;
      if (event.type === "turn/completed") {
        completed += 1;
        lastReplyBytes = p?.text !== undefined || p?.textRef ? bytes : requestReplyBytes;
      }
      if (event.type === "session/failed")
        failure = new Error(`session failed: ${e.data.slice(0, 300)}`);
      wake();
    },
  );
  return {
    /** Sends a message; resolves with the ms until its `turn/completed` and the reply's bytes. */
    async turn(content: string): Promise<{ ms: number; replyBytes: number }> {
      const target = completed + 1;
      const start = performance.now();
      await (await post(`/v1/sessions/${id}/messages`, { content })).body?.cancel();
      const deadline = Date.now() + TURN_TIMEOUT_MS;
      while (completed < target) {
        if (failure) throw failure;
        if (Date.now() > deadline)
          throw new Error(`no turn/completed within ${TURN_TIMEOUT_MS / 1000} s (${phase})`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 1000);
        });
      }
      return { ms: performance.now() - start, replyBytes: lastReplyBytes };
    },
    close: () => sse.close(),
  };
}

/** One session, one short turn, SSE closed again. Returns the session id and the turn's ms. */
async function shortSession(title: string): Promise<{ id: string; ms: number }> {
  const id = await createSession(title);
  const w = await watch(id);
  try {
    return { id, ms: (await w.turn("hello there")).ms };
  } finally {
    await w.close();
  }
}

/** `bytes` ASCII bytes of 64-byte words (63 characters and a space), distinct per `seed`. */
function bulkText(bytes: number, seed: number): string {
  const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
  const parts: string[] = [];
  let length = 0;
  for (let i = 0; length < bytes; i++) {
    const word = `${seed.toString(36)}.${i.toString(36)}.${letters}`.slice(0, 63);
    parts.push(`${word} `);
    length += 64;
  }
  return parts.join("").slice(0, bytes);
}

const mib = (kib: number) => kib / 1024;
const f1 = (n: number) => n.toFixed(1);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;

async function main() {
  const started = performance.now();
  if (!existsSync("/proc/self/status"))
    throw new Error("bench:sessions:memory reads /proc/<pid>/status: Linux only");
  const server = await startDevServer({ migrate: true, vars: { SCRIPTED_MODEL_DELAY_MS: "0" } });
  base = server.url;
  group = server.child.pid;
  const guard = setTimeout(() => {
    console.error(
      `bench:sessions:memory exceeded its ${TIMEOUT_MS / 1000} s limit during ${phase}`,
    );
    void server.stop("SIGKILL").then(() => process.exit(1));
  }, TIMEOUT_MS);
  try {
    // (a) Baseline: the first request's costs (module load, D1, first DOs) are paid here.
    phase = "baseline";
    await shortSession("warm-up");
    const baseline = await idle();

    // (b) One idle session.
    phase = "one idle session";
    const one = await shortSession("idle");
    const oneIdle = await idle();

    // (e) N more idle sessions.
    phase = `${IDLE_SESSIONS} idle sessions`;
    for (let i = 0; i < IDLE_SESSIONS; i++) await shortSession(`idle ${i}`);
    const manyIdle = IDLE_SESSIONS > 0 ? await idle() : oneIdle;

    // (c) A busy turn: a long reply streaming.
    phase = "busy turn";
    const busyId = await createSession("busy");
    const busyWatch = await watch(busyId);
    await busyWatch.turn("hello"); // the session exists and is warm
    const beforeBusy = await idle();
    const busySampler = sampler();
    const busyTurn = await busyWatch.turn(`reply ${REPLY_BYTES}`);
    const busyMs = busyTurn.ms;
    if (busyTurn.replyBytes !== REPLY_BYTES)
      throw new Error(`the busy reply has ${busyTurn.replyBytes} bytes, expected ${REPLY_BYTES}`);
    const busy = busySampler.stop();
    await busyWatch.close();
    const afterBusy = await idle();

    // (d) One session with a large transcript, built through the HTTP API.
    phase = "large transcript";
    const largeId = await createSession("large transcript");
    const largeWatch = await watch(largeId);
    const targetBytes = TRANSCRIPT_MB * MB;
    const buildSampler = sampler();
    let transcriptBytes = 0;
    let turns = 0;
    const buildTurnMs: number[] = [];
    const replyBytes: number[] = [];
    while (transcriptBytes < targetBytes) {
      const content = bulkText(MESSAGE_BYTES, turns);
      const done = await largeWatch.turn(content);
      buildTurnMs.push(done.ms);
      // The message (ASCII: bytes = characters), then the reply as stored. The scripted reply
      // echoes `You said: <message>` as the model saw it: a prompt carries at most
      // MODEL_CONTENT_MAX_BYTES (256 KiB by default) of one content, plus a truncation note.
      replyBytes.push(done.replyBytes);
      transcriptBytes += MESSAGE_BYTES + done.replyBytes;
      turns += 1;
      if (turns % 5 === 0)
        console.error(
          `  … ${turns} turns, ${f1(transcriptBytes / MB)} MB of transcript, last turn ${buildTurnMs.at(-1)!.toFixed(0)} ms, RSS ${f1(mib(snapshot().rssKiB))} MiB`,
        );
    }
    const build = buildSampler.stop();
    const largeIdle = await idle();

    phase = "turns on the large session";
    const largeSampler = sampler();
    const largeTurnMs = [(await largeWatch.turn("hello again")).ms];
    const largeTurn = largeSampler.stop();
    // Two more short turns on each side, interleaved, for a median.
    const freshTurnMs: number[] = [];
    for (let i = 0; i < 3; i++) {
      freshTurnMs.push((await shortSession(`fresh ${i}`)).ms);
      if (i < 2) largeTurnMs.push((await largeWatch.turn(`hello ${i}`)).ms);
    }
    await largeWatch.close();
    const end = await idle();

    const result = {
      note: "workerd hosts every Durable Object in one process: memory per object is a difference of process RSS (sum over the dev server's workerd processes); idle = median of 5 samples after a settle time",
      parameters: {
        transcriptTargetMB: TRANSCRIPT_MB,
        messageBytes: MESSAGE_BYTES,
        idleSessions: IDLE_SESSIONS,
        replyBytes: REPLY_BYTES,
        settleMs: SETTLE_MS,
      },
      baseline: { rssKiB: baseline.rssKiB, hwmKiB: baseline.hwmKiB, processes: baseline.processes },
      oneIdleSession: {
        sessionId: one.id,
        rssKiB: oneIdle.rssKiB,
        deltaKiB: oneIdle.rssKiB - baseline.rssKiB,
      },
      idleSessions: {
        count: IDLE_SESSIONS,
        rssKiB: manyIdle.rssKiB,
        deltaKiB: manyIdle.rssKiB - oneIdle.rssKiB,
        perSessionKiB:
          IDLE_SESSIONS > 0 ? (manyIdle.rssKiB - oneIdle.rssKiB) / IDLE_SESSIONS : null,
      },
      busyTurn: {
        replyBytes: REPLY_BYTES,
        turnMs: busyMs,
        beforeKiB: beforeBusy.rssKiB,
        ...busy,
        peakDeltaKiB: Math.max(busy.sampledPeakKiB, busy.hwmPeakKiB ?? 0) - beforeBusy.rssKiB,
        afterIdleKiB: afterBusy.rssKiB,
      },
      largeTranscript: {
        sessionId: largeId,
        turns,
        transcriptBytes,
        buildMs: buildTurnMs.reduce((a, b) => a + b, 0),
        buildTurnMs: { first: buildTurnMs[0], last: buildTurnMs.at(-1), all: buildTurnMs },
        replyBytes: { min: Math.min(...replyBytes), max: Math.max(...replyBytes) },
        buildPeak: build,
        idleKiB: largeIdle.rssKiB,
        idleDeltaKiB: largeIdle.rssKiB - afterBusy.rssKiB,
        shortTurn: {
          ...largeTurn,
          peakDeltaKiB:
            Math.max(largeTurn.sampledPeakKiB, largeTurn.hwmPeakKiB ?? 0) - largeIdle.rssKiB,
        },
        shortTurnMs: {
          large: largeTurnMs,
          fresh: freshTurnMs,
          largeMedian: median(largeTurnMs),
          freshMedian: median(freshTurnMs),
        },
      },
      endIdleKiB: end.rssKiB,
      runSeconds: (performance.now() - started) / 1000,
    };

    const m = (kib: number) => `${f1(mib(kib))} MiB`;
    const d = (kib: number) => `${kib >= 0 ? "+" : ""}${f1(mib(kib))} MiB`;
    const peak = (p: { sampledPeakKiB: number; hwmPeakKiB: number | null }) =>
      `${m(p.sampledPeakKiB)} sampled, ${p.hwmPeakKiB === null ? "VmHWM n/a" : `VmHWM ${m(p.hwmPeakKiB)}`}`;
    const lt = result.largeTranscript;
    console.log("\nbench:sessions:memory (wrangler dev, scripted model, no delay)");
    console.log(
      `  workerd processes: ${baseline.processes.length}; RSS = sum of their VmRSS. workerd hosts every`,
    );
    console.log(
      "  Durable Object in one process, so per-session memory is a difference of process RSS.",
    );
    console.log(`  (a) baseline (after start + warm-up turn)   RSS ${m(baseline.rssKiB)}`);
    console.log(
      `  (b) + 1 idle session                        RSS ${m(oneIdle.rssKiB)} (${d(result.oneIdleSession.deltaKiB)})`,
    );
    if (IDLE_SESSIONS > 0)
      console.log(
        `  (e) + ${String(IDLE_SESSIONS).padEnd(3)} idle sessions                   RSS ${m(manyIdle.rssKiB)} (${d(result.idleSessions.deltaKiB)}, ${f1(result.idleSessions.perSessionKiB!)} KiB per session)`,
      );
    console.log(
      `  (c) busy: reply ${REPLY_BYTES} B in ${busyMs.toFixed(0)} ms        before ${m(beforeBusy.rssKiB)}, peak ${peak(busy)} (${d(result.busyTurn.peakDeltaKiB)}), ${busy.samples} samples; idle after ${m(afterBusy.rssKiB)}`,
    );
    console.log(
      `  (d) 1 session, ${f1(transcriptBytes / MB)} MB transcript: ${turns} turns of a ${f1(MESSAGE_BYTES / 1024)} KiB message + its echo (${f1(lt.replyBytes.max / 1024)} KiB: the prompt's per-content budget)`,
    );
    console.log(
      `      build: ${(lt.buildMs / 1000).toFixed(1)} s, turn ${lt.buildTurnMs.first?.toFixed(0)} ms first → ${lt.buildTurnMs.last?.toFixed(0)} ms last; peak ${peak(build)}`,
    );
    console.log(
      `      idle after build                        RSS ${m(largeIdle.rssKiB)} (${d(lt.idleDeltaKiB)} vs idle after (c))`,
    );
    console.log(
      `      short turn on it: peak ${peak(largeTurn)} (${d(lt.shortTurn.peakDeltaKiB)} over idle)`,
    );
    console.log(
      `      short turn ms, median of 3: large session ${lt.shortTurnMs.largeMedian.toFixed(0)}, fresh session ${lt.shortTurnMs.freshMedian.toFixed(0)} (ratio ${(lt.shortTurnMs.largeMedian / lt.shortTurnMs.freshMedian).toFixed(2)})`,
    );
    console.log(`  end idle RSS ${m(end.rssKiB)}; run ${result.runSeconds.toFixed(0)} s`);
    mkdirSync(join(here, "results"), { recursive: true });
    writeFileSync(
      join(here, "results", "sessions-memory.json"),
      `${JSON.stringify(result, null, 2)}\n`,
    );
  } finally {
    clearTimeout(guard);
    await server.stop();
  }
}

await main();
