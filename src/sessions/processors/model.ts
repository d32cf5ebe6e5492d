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
 * Text is streamed through a DeltaWriter (coalesced, bounded appends; delta-writer.ts). A
 * reply larger than the inline limit is stored as chunk events and the completion carries a
 * reference (content.ts). If the outcome cannot be appended (a non-retryable append error),
 * the request is failed with that error rather than retried forever.
 *
 * A request names the transcript it covers (`messageCount`); the prompt is built at execution
 * time from the agent's transcript rows, once the agent has committed them through the
 * request's offset. Messages whose content is a chunk reference are read back chunk by chunk,
 * cut to the model's per-content budget with an explicit `[truncated: N of M bytes]` note.
 * When the window exceeds the model's context budget, the older messages are compacted first
 * (`context/compaction-requested` → `context/compacted`, keyed by the request like everything
 * else, so a crash mid-compaction resumes and records it once); the summaries are this
 * processor's projection (table `compactions`). Requests written before issue 9 embed their
 * prompt and are run as written. Building the prompt (references, compaction) is
 * model-context.ts.
 */
import type { JSONSchema7, LanguageModelV4 } from "@ai-sdk/provider";
import type { z } from "zod";
import type { StateOf } from "../../processors/contract";
import {
  type BatchHookArgs,
  type EmitInput,
  type EventHookArgs,
  type ProcessorTables,
  type ProjectArgs,
  type ReduceArgs,
  StreamProcessor,
} from "../../processors/processor";
import type { ChunkEventLike } from "../content";
import { modelContract } from "../contracts";
import type { SessionEventPayload, toolSpecSchema } from "../events";
import { collectStream, ModelError, retryDelayMs, toModelError } from "../models/collect";
import { toPrompt } from "../prompt";
import { type Delta, DeltaWriter } from "./delta-writer";
import { appendCompletion } from "./model-completion";
import { type Built, type Compaction, ModelContext } from "./model-context";

type ToolSpec = z.infer<typeof toolSpecSchema>;

type Request = StateOf<typeof modelContract>["requests"][string];

export interface ModelRuntime {
  resolve(spec: string): LanguageModelV4;
  /** Reads the `model/request-requested` payload stored at `offset`. */
  readRequest(offset: number): Promise<SessionEventPayload<"model/request-requested">>;
  /** Reads the event stored at `offset` (one bounded read; for chunks of large content). */
  readEvent(offset: number): Promise<ChunkEventLike | undefined>;
  /** Most UTF-8 bytes of one message's content a prompt carries; more is cut, with a note. */
  contentBudgetBytes: number;
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

export class ModelProcessor extends StreamProcessor<typeof modelContract> {
  readonly contract = modelContract;
  /** Summaries standing in for transcript messages `[0, through)` (one row per compaction). */
  override readonly tables = {
    compactions:
      "through INTEGER PRIMARY KEY, from_message INTEGER NOT NULL, summary TEXT NOT NULL, at INTEGER NOT NULL",
  };
  readonly #running = new Map<string, { turnId: string; abort: AbortController }>();
  readonly #delivered = new Map<string, SessionEventPayload<"model/request-requested">>();

  readonly #context: ModelContext;

  constructor(private readonly runtime: ModelRuntime) {
    super();
    this.#context = new ModelContext(runtime);
  }

  get running(): number {
    return this.#running.size;
  }

  reduce({ state, event }: ReduceArgs<typeof modelContract>) {
    // Keys are request ids: a null-prototype copy and own-key lookups (never Object.prototype's).
    const requests: Record<string, Request> = Object.assign(Object.create(null), state.requests);
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
        const request = Object.hasOwn(requests, event.payload.requestId)
          ? requests[event.payload.requestId]
          : undefined;
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
    return { requests: { ...requests } };
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
    // Delivered (or fed) to this instance, or resumed after a restart (read back).
    const fresh = this.#delivered.has(requestId);
    const spec = this.#delivered.get(requestId) ?? (await this.runtime.readRequest(cause));
    this.#delivered.delete(requestId);
    const model = this.runtime.resolve(spec.model);
    let attempt = request.attempts;
    let compacted: Compaction | null = null;
    for (;;) {
      attempt += 1;
      if (signal.aborted) return;
      // `request-started` rides on the attempt's first append (its first text, usually) rather
      // than costing a commit of its own before the model runs; `started()` appends it alone
      // when an outcome comes first. Its key makes a repeat collapse at the stream.
      const start: EmitInput<typeof modelContract> = {
        type: "model/request-started",
        payload: { requestId, attempt },
        key: `started-${attempt}`,
        causeOffset: cause,
      };
      let startSent = false;
      const append = async (...events: EmitInput<typeof modelContract>[]) => {
        const carries = !startSent;
        startSent = true;
        try {
          return await this.append(...(carries ? [start, ...events] : events));
        } catch (error) {
          if (carries) startSent = false; // not known to be stored: the next append carries it
          throw error;
        }
      };
      const started = async () => {
        if (!startSent) await append();
      };
      // A resumed request records each attempt before running it: a crash that recurs before
      // any output must still count against maxAttempts, not restart attempt n forever.
      if (!fresh) await started();
      const deltaEvents = (batch: Delta[]) =>
        batch.map((d) => ({
          type: "model/delta-produced" as const,
          payload: { requestId, attempt, index: d.index, text: d.text },
          key: `delta-${attempt}-${d.index}`,
          causeOffset: cause,
        }));
      const deltas = new DeltaWriter((batch) => append(...deltaEvents(batch)));
      let failure: ModelError;
      try {
        let built: Built;
        if (spec.messages !== undefined) {
          // A request written before issue 9 embeds its prompt; it runs as written.
          const messages = await this.#context.resolve(spec.messages);
          built = { prompt: toPrompt(spec.system ?? "", messages), tools: spec.tools ?? [] };
        } else {
          const context = await this.#context.build(
            requestId,
            request,
            spec,
            model,
            signal,
            compacted,
            (...events) => append(...events),
          );
          compacted = context.compaction;
          built = context.built;
        }
        if (signal.aborted) return;
        const result = await collectStream(
          model,
          {
            prompt: built.prompt,
            tools: built.tools.map((t) => ({
              type: "function" as const,
              name: t.name,
              description: t.description,
              inputSchema: inputSchemaOf(t),
            })),
            abortSignal: signal,
            providerOptions: { scripted: { requestId, attempt } },
          },
          (text) => deltas.push(text),
        );
        // The reply's last deltas go out with its completion, in one append.
        const last = deltaEvents(await deltas.finish());
        if (signal.aborted) {
          if (last.length > 0) await append(...last);
          return;
        }
        const refused = await appendCompletion(requestId, cause, result, { attempt, last, append });
        if (refused === null) return;
        failure = refused;
      } catch (error) {
        failure = error instanceof ModelError ? error : toModelError(error, signal);
      }
      if (signal.aborted || failure.cancelled) return;
      // The attempt counts once it is recorded, whatever its outcome.
      await started();
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
}

/**
 * A tool's stored `inputSchema` (any JSON) as the JSON Schema object a model call takes. The
 * registry writes it with `z.toJSONSchema` (src/sessions/tools/define.ts), always an object;
 * anything else fails the request rather than reach a provider.
 */
function inputSchemaOf(tool: ToolSpec): JSONSchema7 {
  const schema = tool.inputSchema;
  if (isJsonObject(schema)) return schema;
  throw new ModelError(`tool ${tool.name}: inputSchema is not a JSON object`, {
    retryable: false,
  });
}

function isJsonObject(value: unknown): value is JSONSchema7 {
  return typeof value === "object" && value !== null && !Array.isArray(value);
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
