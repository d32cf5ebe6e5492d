/**
 * The model processor runs LLM requests. A `model/request-requested` event becomes an entry
 * in reduced state; after every batch (and on the session's alarm) each entry that is not
 * running in this isolate is executed in the background, so a cancel can be reduced while a
 * request streams. Execution: `request-started` (attempt n), `delta-produced` events as text
 * arrives, then exactly one `request-completed` or `request-failed`. Retryable failures (429,
 * 5xx, transport) back off and try again. After a crash the entry is still in state and is
 * executed again with the next attempt number; every append is keyed by the request's own
 * offset, so nothing is duplicated and late output of a cancelled request is discarded.
 */
import type { LanguageModelV4 } from "@ai-sdk/provider";
import type { StateOf, TypedEvent } from "../../processors/contract";
import {
  type BatchHookArgs,
  type EventHookArgs,
  StreamProcessor,
} from "../../processors/processor";
import { modelContract } from "../contracts";
import type { SessionEventPayload } from "../events";
import { collectStream, ModelError, retryDelayMs, toModelError } from "../models/collect";
import { toPrompt } from "../prompt";

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
}

export class ModelProcessor extends StreamProcessor<typeof modelContract> {
  readonly contract = modelContract;
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
        const result = await collectStream(
          model,
          {
            prompt: toPrompt(spec.system, spec.messages),
            tools: spec.tools.map((t) => ({
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
