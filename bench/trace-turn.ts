/**
 * `npm run bench:trace`: where a turn's time goes, hop by hop. Starts `wrangler dev` with
 * `TRACE_TURNS=true` (src/trace.ts) and the scripted model at no delay, runs a few warm-up
 * turns and then `TRACE_TURNS_COUNT` (default 15) measured turns on one session, each sent
 * with POST …/messages while the session's SSE stream is open. It joins the worker's trace
 * lines (from wrangler's stdout) with the client's own timestamps (same machine clock) and
 * prints, as medians over the turns:
 * - a phase table: client → worker → Stream DO commit → delivery → each processor → its
 *   appends → SSE (`sse.write`: the pump read the events; `sse.flushed`: its write of them
 *   resolved, i.e. the response stream took them) → client;
 * - the full timeline of every hop, in order, in ms since the POST was sent.
 *
 * Clock caveat: workerd's `Date.now()` only advances on I/O (ms resolution), so compute
 * between two I/O points is charged to the next hop, and sub-millisecond hops read as 0.
 * Loopback only, bounded, exits by itself.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startDevServer } from "../test/support/dev-server.ts";
import { workerdCpuMs } from "./process-cpu.ts";
import { openSse, postJson as post } from "./support/session-http.ts";

const here = dirname(fileURLToPath(import.meta.url));
const TURNS = Number(process.env.TRACE_TURNS_COUNT ?? 15);
const WARMUP = 3;
const WAIT_MS = 30_000;

interface TraceRecord {
  trace: string;
  t: number;
  stream?: string;
  processor?: string;
  subscription?: string;
  offsets?: number[];
  types?: (string | null)[];
  checkpoint?: number;
  ack?: number;
}

interface Turn {
  posted: number;
  answered: number;
  inputOffset: number;
  doneOffset: number;
  done: number;
  /** Client receive time of each event offset on the SSE stream. */
  received: Map<number, number>;
  records: TraceRecord[];
}

const median = (values: number[]): number => {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

const sessionOf = (stream: string | undefined) =>
  /\/sessions\/([0-9A-Z]{26})/.exec(stream ?? "")?.[1];

/** Collects `{"trace":…}` JSON lines from a child's stdout. */
function collectTraces(stdout: NodeJS.ReadableStream, into: TraceRecord[]): void {
  let buffer = "";
  stdout.on("data", (chunk: Buffer) => {
    buffer += chunk.toString("utf8");
    let newline = buffer.indexOf("\n");
    while (newline >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      const start = line.indexOf('{"trace":');
      if (start >= 0) {
        try {
          into.push(JSON.parse(line.slice(start)) as TraceRecord);
        } catch {
          // a line that only looks like a trace
        }
      }
      newline = buffer.indexOf("\n");
    }
  });
}

/** A short, turn-independent name for a record: hop, who, offsets relative to the input. */
function labelOf(record: TraceRecord, inputOffset: number): string {
  const who =
    record.processor ??
    (record.subscription ? record.subscription.slice(0, record.subscription.indexOf("@")) : "");
  const rel = (o: number) => (o - inputOffset >= 0 ? `+${o - inputOffset}` : `${o - inputOffset}`);
  const offsets = record.offsets ?? [];
  const range =
    offsets.length === 0
      ? record.checkpoint !== undefined
        ? `→${rel(record.checkpoint)}`
        : record.ack !== undefined
          ? `ack ${rel(record.ack)}`
          : ""
      : offsets.length === 1
        ? rel(offsets[0]!)
        : `${rel(offsets[0]!)}..${rel(offsets.at(-1)!)}`;
  const types = summarizeTypes(record.types ?? []);
  return [record.trace, who && `[${who}]`, range, types].filter(Boolean).join(" ");
}

function summarizeTypes(types: (string | null)[]): string {
  const counts = new Map<string, number>();
  for (const type of types) counts.set(type ?? "-", (counts.get(type ?? "-") ?? 0) + 1);
  return [...counts].map(([type, n]) => (n > 1 ? `${type}×${n}` : type)).join(",");
}

/** The phases of a turn, each from one hop to the next; undefined when a hop is missing. */
function phases(turn: Turn): Array<[string, number | undefined]> {
  const r = turn.records;
  const has = (o: number | undefined) => (x: TraceRecord) =>
    o !== undefined && (x.offsets ?? []).includes(o);
  const committedType = (type: string) =>
    r.find((x) => x.trace === "stream.committed" && (x.types ?? []).includes(type));
  const offsetOf = (x: TraceRecord | undefined, type: string) =>
    x?.offsets?.[(x.types ?? []).indexOf(type)];
  const received = r.find((x) => x.trace === "http.message.received");
  const input = committedType("session/input-added");
  const agentGetsInput = r.find(
    (x) => x.trace === "host.batch" && x.processor === "agent" && has(turn.inputOffset)(x),
  );
  const request = committedType("model/request-requested");
  const requestOffset = offsetOf(request, "model/request-requested");
  const modelGetsRequest = r.find(
    (x) => x.trace === "host.batch" && x.processor === "model" && has(requestOffset)(x),
  );
  const deltas = r.filter(
    (x) => x.trace === "stream.committed" && (x.types ?? []).some((t) => t?.includes("delta")),
  );
  const completed = committedType("model/request-completed");
  const completedOffset = offsetOf(completed, "model/request-completed");
  const agentGetsCompleted = r.find(
    (x) => x.trace === "host.batch" && x.processor === "agent" && has(completedOffset)(x),
  );
  const turnDone = r.find((x) => x.trace === "stream.committed" && has(turn.doneOffset)(x));
  const sse = r.find((x) => x.trace === "sse.write" && has(turn.doneOffset)(x));
  const flushed = r.find((x) => x.trace === "sse.flushed" && has(turn.doneOffset)(x));
  const appended = r.find((x) => x.trace === "agent.input.appended");
  const caughtUp = r.find((x) => x.trace === "agent.input.caught-up");
  const span = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined ? undefined : b - a;
  return [
    ["client POST → worker route", span(turn.posted, received?.t)],
    ["worker → input committed (Stream DO, via SessionAgent)", span(received?.t, input?.t)],
    ["input committed → agent processor gets it (delivery)", span(input?.t, agentGetsInput?.t)],
    ["agent processor → model request committed", span(agentGetsInput?.t, request?.t)],
    ["model request committed → model processor gets it", span(request?.t, modelGetsRequest?.t)],
    ["model processor → first delta committed", span(modelGetsRequest?.t, deltas[0]?.t)],
    ["first → last delta committed", span(deltas[0]?.t, deltas.at(-1)?.t)],
    ["last delta → model/request-completed committed", span(deltas.at(-1)?.t, completed?.t)],
    [
      "request-completed committed → agent processor gets it",
      span(completed?.t, agentGetsCompleted?.t),
    ],
    ["agent processor → turn/completed committed", span(agentGetsCompleted?.t, turnDone?.t)],
    ["turn/completed committed → SSE write", span(turnDone?.t, sse?.t)],
    ["SSE write → written (writer.write resolved)", span(sse?.t, flushed?.t)],
    ["SSE written → client has turn/completed", span(flushed?.t, turn.done)],
    ["= turn (client POST → turn/completed on SSE)", turn.done - turn.posted],
    ["(side) POST answered, client view", turn.answered - turn.posted],
    ["(side) SessionAgent #catchUp wait in sendMessage", span(appended?.t, caughtUp?.t)],
    ["(count, not ms) commits carrying deltas", deltas.length],
  ];
}

async function main() {
  const server = await startDevServer({
    migrate: true,
    vars: { SCRIPTED_MODEL_DELAY_MS: "0", TRACE_TURNS: "true" },
  });
  const records: TraceRecord[] = [];
  collectTraces(server.child.stdout!, records);
  const guard = setTimeout(() => {
    console.error("bench:trace exceeded its time limit");
    void server.stop("SIGKILL").then(() => process.exit(1));
  }, 180_000);
  let sse: { close(): Promise<void> } | undefined;
  try {
    const base = server.url;
    const { session } = (await (await post(base, "/v1/sessions", { title: "trace" })).json()) as {
      session: { id: string };
    };
    const received = new Map<number, number>();
    let completed: { offset: number; at: number } | null = null;
    let onCompleted: (() => void) | null = null;
    sse = await openSse(
      `${base}/v1/sessions/${session.id}/events`,
      { accept: "text/event-stream" },
      (_event, data) => {
        const at = Date.now();
        const event = JSON.parse(data) as { offset: number; type: string };
        received.set(event.offset, at);
        if (event.type === "turn/completed") {
          completed = { offset: event.offset, at };
          onCompleted?.();
        }
      },
    );

    const turns: Turn[] = [];
    let cpuAtStart: number | null = null;
    for (let i = 0; i < WARMUP + TURNS; i++) {
      if (i === WARMUP) cpuAtStart = workerdCpuMs(server.child.pid);
      completed = null;
      const done = new Promise<void>((resolve) => {
        onCompleted = resolve;
      });
      const posted = Date.now();
      const answer = await post(base, `/v1/sessions/${session.id}/messages`, {
        content: `hello from the trace ${i}`,
      });
      const answered = Date.now();
      const { offset } = (await answer.json()) as { offset: number };
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        done,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error("no turn/completed")), WAIT_MS);
        }),
      ]).finally(() => clearTimeout(timer));
      const finished = completed as { offset: number; at: number } | null;
      if (i >= WARMUP && finished) {
        turns.push({
          posted,
          answered,
          inputOffset: offset,
          doneOffset: finished.offset,
          done: finished.at,
          received,
          records: [],
        });
      }
      // A quiet gap between turns, so that each turn's records fall in its own time window.
      await new Promise((r) => setTimeout(r, 50));
    }
    const cpuAtEnd = workerdCpuMs(server.child.pid);
    const cpuPerTurn =
      cpuAtStart === null || cpuAtEnd === null ? null : (cpuAtEnd - cpuAtStart) / TURNS;
    // Wait (bounded) until the last turn's SSE write has been logged.
    const last = turns.at(-1)!;
    for (let i = 0; i < 50; i++) {
      if (records.some((x) => x.trace === "sse.write" && x.offsets?.includes(last.doneOffset)))
        break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const mine = records.filter((x) => sessionOf(x.stream) === session.id);
    if (mine.length === 0) throw new Error("no trace lines: is TRACE_TURNS wired up?");
    turns.forEach((turn, i) => {
      const until = turns[i + 1]?.posted ?? Number.POSITIVE_INFINITY;
      turn.records = mine.filter((x) => x.t >= turn.posted && x.t < until);
    });

    // Phase table.
    const phaseRows = new Map<string, number[]>();
    for (const turn of turns) {
      for (const [name, value] of phases(turn)) {
        if (!phaseRows.has(name)) phaseRows.set(name, []);
        if (value !== undefined) phaseRows.get(name)!.push(value);
      }
    }
    console.log(
      `\nbench:trace — one session, ${TURNS} warm turns, scripted model at 0 ms, wrangler dev (medians; workerd clock: ms, advances on I/O only)`,
    );
    console.log("| phase | median ms | min | max |");
    console.log("|---|---|---|---|");
    const phaseResult: Record<string, { median: number; min: number; max: number; n: number }> = {};
    for (const [name, values] of phaseRows) {
      const cell =
        values.length === 0
          ? "— | — | —"
          : `${median(values).toFixed(1)} | ${Math.min(...values)} | ${Math.max(...values)}`;
      console.log(`| ${name} | ${cell} |`);
      if (values.length > 0)
        phaseResult[name] = {
          median: median(values),
          min: Math.min(...values),
          max: Math.max(...values),
          n: values.length,
        };
    }

    console.log(
      cpuPerTurn === null
        ? "workerd CPU per turn: not measurable here (no /proc)"
        : `workerd CPU per turn (all its processes, user + system, incl. 50 ms idle gaps): ${cpuPerTurn.toFixed(1)} ms`,
    );

    // Full timeline: every hop, labelled relative to the turn's input offset.
    const timeline = new Map<string, number[]>();
    for (const turn of turns) {
      const seen = new Map<string, number>();
      for (const record of [...turn.records].sort((a, b) => a.t - b.t)) {
        const base = labelOf(record, turn.inputOffset);
        const n = (seen.get(base) ?? 0) + 1;
        seen.set(base, n);
        const label = n > 1 ? `${base} #${n}` : base;
        if (!timeline.has(label)) timeline.set(label, []);
        timeline.get(label)!.push(record.t - turn.posted);
      }
      const sseDone = turn.received.get(turn.doneOffset);
      if (sseDone !== undefined) {
        if (!timeline.has("client has turn/completed"))
          timeline.set("client has turn/completed", []);
        timeline.get("client has turn/completed")!.push(sseDone - turn.posted);
      }
    }
    const rows = [...timeline]
      .map(([label, values]) => ({ label, at: median(values), seen: values.length }))
      .sort((a, b) => a.at - b.at);
    console.log(
      `\ntimeline (ms since the POST; offsets relative to the turn's input event; seen in n of ${turns.length} turns)`,
    );
    let previous = 0;
    for (const row of rows) {
      console.log(
        `  ${row.at.toFixed(0).padStart(5)} ms  (+${(row.at - previous).toFixed(0).padStart(3)})  ${row.label}${row.seen < turns.length ? `  [n=${row.seen}]` : ""}`,
      );
      previous = row.at;
    }
    mkdirSync(join(here, "results"), { recursive: true });
    const file = join(here, "results", "trace-turn.json");
    writeFileSync(
      file,
      `${JSON.stringify({ turns: turns.length, cpuPerTurn, phases: phaseResult, timeline: rows, raw: turns.map((t) => ({ ...t, received: undefined })) }, null, 2)}\n`,
    );
    console.log(`\nsaved ${file}`);
    await sse.close();
  } finally {
    clearTimeout(guard);
    await sse?.close();
    await server.stop();
  }
}

await main();
