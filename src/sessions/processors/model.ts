/**
 * The model processor runs LLM requests. A `model/request-requested` event becomes an entry
 * in reduced state; after every batch (and on the session's alarm) each entry that is not
 * running in this isolate is executed in the background, so a cancel can be reduced while a
 * request streams. Execution: `request-started` (attempt n), `delta-produced` events as text
 * arrives, then exactly one `request-completed` or `request-failed`. Retryable failures (429,
 * 5xx, transport) back off and try again. After a crash the entry is still in state and is
 * executed again with the next attempt number; every append is keyed by the request's own
 * offset, so nothing is duplicated and late output of a cancelled request is discarded.
 *
 * A request names the transcript it covers (`messageCount`); the prompt is built at execution
 * time from the agent's transcript rows, once the agent has committed them through the
 * request's offset. When it exceeds the model's context budget, the older messages are
 * compacted first (`context/compaction-requested` → `context/compacted`, keyed by the request
 * like everything else, so a crash mid-compaction resumes and records it once); the summaries
 * are this processor's projection (table `compactions`). Requests written before issue 9
 * embed their prompt and are run as written.
 */
import type { LanguageModelV4, LanguageModelV4Prompt } from "@ai-sdk/provider";
import type { z } from "zod";
import type { StateOf, TypedEvent } from "../../processors/contract";
import {
  type BatchHookArgs,
  type EventHookArgs,
  type ProcessorTables,
  type ProjectArgs,
  StreamProcessor,
} from "../../processors/processor";
import { COMPACTION_SYSTEM, compactionInput, planCompaction, systemWithSummary } from "../context";
import { modelContract } from "../contracts";
import type { SessionEventPayload, toolSpecSchema } from "../events";
import { collectStream, ModelError, retryDelayMs, toModelError } from "../models/collect";
import { toPrompt } from "../prompt";
import { byteLength, messageSizes, readMessages } from "../transcript";

type ToolSpec = z.infer<typeof toolSpecSchema>;

type Request = StateOf<typeof modelContract>["requests"][string];

export interface ModelRuntime {
  resolve(spec: string): LanguageModelV4;
  /** Reads the `model/request-requested` payload stored at `offset`. */
  readRequest(offset: number): Promise<SessionEventPayload<"model/request-requested">>;
  /** Called when work starts or ends, so the host keeps an alarm armed while requests run. */
  inFlight(count: number): void;
  maxAttempts: number;
  /** Base of the exponential backoff between attempts. */
  retryBaseMs: number;
  /** Resolves once the agent's transcript and this processor's compactions are committed through `offset`. */
  waitForHistory(offset: number): Promise<void>;
  /** The session's system prompt and tool specs (configuration from `session/created`). */
  session(): { system: string; tools: ToolSpec[] };
  /** The agent's transcript tables (read only). */
  transcript(): ProcessorTables;
  /** This processor's own tables (compactions). */
  tables(): ProcessorTables;
  /** The context budget of a model spec, in prompt bytes. */
  contextBudget(model: string): number;
}

interface Built {
  prompt: LanguageModelV4Prompt;
  tools: ToolSpec[];
}

export class ModelProcessor extends StreamProcessor<typeof modelContract> {
  readonly contract = modelContract;
  /** Summaries standing in for transcript messages `[0, through)` (one row per compaction). */
  override readonly tables = {
    compactions:
      "through INTEGER PRIMARY KEY, from_message INTEGER NOT NULL, summary TEXT NOT NULL, at INTEGER NOT NULL",
  };
  readonly #running = new Map<string, { turnId: string; abort: AbortController }>();
  readonly #delivered = new Map<string, SessionEventPayload<"model/request-requested">>();

  constructor(private readonly runtime: ModelRuntime) {
    super();
  }

  get running(): number {
    return this.#running.size;
  }

  reduce({
    state,
    event,
  }: {
    state: StateOf<typeof modelContract>;
    event: TypedEvent<typeof modelContract>;
  }) {
    const requests = { ...state.requests };
    switch (event.type) {
      case "model/request-requested":
        requests[event.payload.requestId] = {
          offset: event.offset,
          turnId: event.payload.turnId,
          model: event.payload.model,
          attempts: 0,
        };
        break;
      case "model/request-started": {
        const request = requests[event.payload.requestId];
        if (request)
          requests[event.payload.requestId] = {
            ...request,
            attempts: Math.max(request.attempts, event.payload.attempt),
          };
        break;
      }
      case "model/request-completed":
      case "model/request-failed":
        delete requests[event.payload.requestId];
        break;
      case "turn/cancelled":
        for (const [id, request] of Object.entries(requests))
          if (request.turnId === event.payload.turnId) delete requests[id];
        break;
      case "session/deleted":
        return { requests: {} };
    }
    return { requests };
  }

  override project({ event, tables }: ProjectArgs<typeof modelContract>) {
    if (event.type !== "context/compacted") return;
    tables.exec(
      `INSERT OR IGNORE INTO ${tables.name("compactions")} (through, from_message, summary, at) VALUES (?, ?, ?, ?)`,
      event.payload.throughMessage,
      event.payload.fromMessage,
      event.payload.summary,
      event.offset,
    );
  }

  override processEvent({ event }: EventHookArgs<typeof modelContract>) {
    // Keep the request as delivered, so that running it needs no read from the stream.
    if (event.type === "model/request-requested")
      this.#delivered.set(event.payload.requestId, event.payload);
    if (event.type === "session/cancel-requested" || event.type === "session/deleted")
      this.#abort(() => true);
    if (event.type === "turn/cancelled") this.#abort((turnId) => turnId === event.payload.turnId);
  }

  #abort(which: (turnId: string) => boolean) {
    for (const run of this.#running.values()) if (which(run.turnId)) run.abort.abort();
  }

  override processBatch({ state }: BatchHookArgs<typeof modelContract>) {
    for (const [requestId, request] of Object.entries(state.requests)) {
      if (this.#running.has(requestId)) continue;
      const abort = new AbortController();
      this.#running.set(requestId, { turnId: request.turnId, abort });
      this.runtime.inFlight(this.#running.size);
      this.runInBackground(
        this.#execute(requestId, request, abort.signal).finally(() => {
          this.#running.delete(requestId);
          this.runtime.inFlight(this.#running.size);
        }),
      );
    }
  }

  async #execute(requestId: string, request: Request, signal: AbortSignal): Promise<void> {
    const cause = request.offset;
    const spec = this.#delivered.get(requestId) ?? (await this.runtime.readRequest(cause));
    this.#delivered.delete(requestId);
    const model = this.runtime.resolve(spec.model);
    let attempt = request.attempts;
    let compacted: Compaction | null = null;
    for (;;) {
      attempt += 1;
      if (signal.aborted) return;
      await this.append({
        type: "model/request-started",
        payload: { requestId, attempt },
        key: `started-${attempt}`,
        causeOffset: cause,
      });
      const deltas = new DeltaWriter((batch) =>
        this.append(
          ...batch.map((d) => ({
            type: "model/delta-produced" as const,
            payload: { requestId, attempt, index: d.index, text: d.text },
            key: `delta-${attempt}-${d.index}`,
            causeOffset: cause,
          })),
        ),
      );
      let failure: ModelError;
      try {
        let built: Built;
        if (spec.messages !== undefined) {
          built = { prompt: toPrompt(spec.system ?? "", spec.messages), tools: spec.tools ?? [] };
        } else {
          const context = await this.#context(requestId, request, spec, model, signal, compacted);
          compacted = context.compaction;
          built = context.built;
        }
        const result = await collectStream(
          model,
          {
            prompt: built.prompt,
            tools: built.tools.map((t) => ({
              type: "function" as const,
              name: t.name,
              description: t.description,
              inputSchema: t.inputSchema as never,
            })),
            abortSignal: signal,
            providerOptions: { scripted: { requestId, attempt } },
          },
          (text) => deltas.push(text),
        );
        await deltas.flush();
        if (signal.aborted) return;
        await this.append({
          type: "model/request-completed",
          payload: {
            requestId,
            text: result.text,
            toolCalls: result.toolCalls,
            finishReason: result.finishReason,
          },
          key: "completed",
          causeOffset: cause,
        });
        return;
      } catch (error) {
        failure = error instanceof ModelError ? error : toModelError(error, signal);
      }
      if (signal.aborted || failure.cancelled) return;
      // Persist the outcome before anything else; pending deltas are best effort.
      if (failure.retryable && attempt < this.runtime.maxAttempts) {
        await deltas.flush().catch(() => undefined);
        await sleep(
          retryDelayMs(attempt, failure.retryAfter, { baseMs: this.runtime.retryBaseMs }),
          signal,
        );
        continue;
      }
      await this.append({
        type: "model/request-failed",
        payload: {
          requestId,
          error: failure.message,
          status: failure.status ?? null,
          attempts: attempt,
        },
        key: "failed",
        causeOffset: cause,
      });
      await deltas
        .flush()
        .catch((e) =>
          console.error(JSON.stringify({ msg: "delta flush after failure", error: String(e) })),
        );
      return;
    }
  }
  /** The latest compaction covering at most the first `n` messages. */
  #latestCompaction(n: number): Compaction | null {
    const tables = this.runtime.tables();
    const row = tables
      .exec<{ through: number; summary: string }>(
        `SELECT through, summary FROM ${tables.name("compactions")} WHERE through <= ? ORDER BY through DESC LIMIT 1`,
        n,
      )
      .toArray()[0];
    return row ? { through: row.through, summary: row.summary } : null;
  }

  /**
   * Builds the prompt of a request that references the transcript: waits for the history to
   * be committed through the request, compacts when the window exceeds the budget, then reads
   * the window. Deterministic for a given request, so a re-execution plans the same compaction.
   */
  async #context(
    requestId: string,
    request: Request,
    spec: SessionEventPayload<"model/request-requested">,
    model: LanguageModelV4,
    signal: AbortSignal,
    known: Compaction | null,
  ): Promise<{ built: Built; compaction: Compaction | null }> {
    await this.runtime.waitForHistory(request.offset);
    const n = spec.messageCount ?? 0;
    const { system, tools } = this.runtime.session();
    const transcript = this.runtime.transcript();
    let compaction = known ?? this.#latestCompaction(n);
    const from = compaction?.through ?? 0;
    const fixedBytes =
      byteLength(system) +
      byteLength(JSON.stringify(tools)) +
      byteLength(compaction?.summary ?? "");
    const budget = this.runtime.contextBudget(spec.model);
    const through = planCompaction({
      budget,
      fixedBytes,
      from,
      sizes: messageSizes(transcript, from, n),
    });
    if (through !== null && !(known && known.through >= through)) {
      const range = { requestId, fromMessage: from, throughMessage: through };
      await this.append({
        type: "context/compaction-requested",
        payload: range,
        key: "compaction-requested",
        causeOffset: request.offset,
      });
      const covered = readMessages(transcript, from, through).map((m) => m.message);
      const result = await collectStream(
        model,
        {
          prompt: [
            { role: "system", content: COMPACTION_SYSTEM },
            {
              role: "user",
              content: [
                {
                  type: "text",
                  text: compactionInput(
                    compaction?.summary ?? null,
                    covered,
                    Math.max(1_024, Math.floor(budget / (2 * covered.length))),
                  ),
                },
              ],
            },
          ],
          maxOutputTokens: Math.max(256, Math.floor(budget / 16)),
          abortSignal: signal,
          providerOptions: { scripted: { requestId, task: "compaction" } },
        },
        () => undefined,
      );
      // The stored event wins: a re-execution after a crash gets the first summary back.
      const summary = truncate(result.text, Math.floor(budget / 4));
      const [stored] = await this.append({
        type: "context/compacted",
        payload: { ...range, summary },
        key: "compacted",
        causeOffset: request.offset,
      });
      const payload = stored?.payload as { throughMessage: number; summary: string } | undefined;
      compaction = {
        through: payload?.throughMessage ?? through,
        summary: payload?.summary ?? summary,
      };
    }
    const start = compaction?.through ?? 0;
    const window = readMessages(transcript, start, n).map((m) => m.message);
    return {
      built: {
        prompt: toPrompt(systemWithSummary(system, compaction?.summary ?? null), window),
        tools,
      },
      compaction,
    };
  }
}

function truncate(text: string, maxBytes: number): string {
  if (byteLength(text) <= maxBytes) return text;
  let out = text.slice(0, maxBytes);
  while (byteLength(out) > maxBytes) out = out.slice(0, -Math.max(1, Math.floor(out.length / 10)));
  return `${out}…`;
}

interface Compaction {
  through: number;
  summary: string;
}

/** Appends deltas in order; deltas that arrive while an append is in flight go out together. */
class DeltaWriter {
  #queue: { index: number; text: string }[] = [];
  #next = 0;
  #flushing: Promise<void> | null = null;
  #error: unknown = null;

  constructor(
    private readonly write: (batch: { index: number; text: string }[]) => Promise<unknown>,
  ) {}

  push(text: string): Promise<void> {
    this.#queue.push({ index: this.#next++, text });
    if (!this.#flushing) this.#flushing = this.#drain();
    return Promise.resolve();
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0 && this.#error === null) {
        const batch = this.#queue.splice(0);
        await this.write(batch);
      }
    } catch (error) {
      this.#error ??= error;
    } finally {
      this.#flushing = null;
    }
  }

  /** Waits for every delta pushed so far to be appended; rethrows the first append failure. */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    if (this.#queue.length > 0 && this.#error === null) await this.#drain();
    if (this.#error !== null) throw this.#error;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
