/**
 * The `scripted` model: a deterministic, offline `LanguageModelV4` for local use and tests.
 * Its behaviour is a function of the prompt and two provider options
 * (`providerOptions.scripted.requestId`, a string, and `providerOptions.scripted.attempt`,
 * a number starting at 1):
 *
 * - The last message is a `tool` message → one sentence naming every tool result of that
 *   message, in order: `Tool results: notes_write returned {"saved":true}; clock_now returned
 *   "2026-…".` (values rendered as JSON; error results read `failed with <json>`, denied
 *   calls `was denied`).
 * - Otherwise the last `user` message's text (text parts joined with "\n") decides:
 *   - `call <tool> <json-args>` (one call per line, or one call whose arguments span several
 *     lines) → `tool-call` parts and finish reason `tool-calls`. Ids are
 *     `${requestId}-call-${i}` (or `call-${i}` without a request id). `input` is the
 *     re-serialized JSON when the arguments parse, else the raw text (the tool layer turns
 *     invalid arguments into a tool error); missing arguments mean `{}`.
 *   - `fail <status> <count|always> [cleanup]` → the first `count` attempts (or every
 *     attempt) fail with an `APICallError` (`statusCode` = status; retryable for
 *     408/409/429/5xx); later attempts reply `You said: <message>`.
 *   - `reply <bytes>` (bytes ≤ 16 MiB) → a reply of exactly that many ASCII bytes: the words
 *     of `scriptedReplyText(bytes)` (deterministic), for tests and benchmarks of long replies.
 *   - anything else → `You said: <message>`.
 * - Text replies stream word by word: each text-delta is a word plus its trailing whitespace,
 *   so the deltas concatenate to the reply exactly. `delayMs` is slept before every delta
 *   after the first. At zero delay the stream still yields to the event loop every
 *   YIELD_EVERY deltas (as a network-bound provider does), so a long reply never holds the
 *   isolate: the consumer's appends, and other requests, make progress while it streams.
 *
 * How failures surface (consumers must handle both, as they must for real providers):
 * - `fail <status> <n|always>`: `doStream` REJECTS with the `APICallError`, before any
 *   stream exists, like an HTTP provider that gets a non-2xx response.
 * - `fail <status> <n|always> cleanup`: `doStream` resolves; the stream emits `stream-start`
 *   and then an `error` part carrying the `APICallError` (like an error chunk in the middle
 *   of a provider's SSE stream), and stays open. Its `cancel()` throws
 *   `Error("scripted cleanup failure")`, so a consumer that cancels the stream while cleaning
 *   up gets a second error that must not mask the first.
 * - Abort (`options.abortSignal`): an already aborted signal makes `doStream` reject with an
 *   `AbortError`; an abort while streaming errors the stream with an `AbortError` at once
 *   (also while a delay is pending).
 * `doGenerate` uses the same plan without delays: it throws the `APICallError` for every
 * failure variant and returns the text or tool calls as content.
 */
import type {
  LanguageModelV4,
  LanguageModelV4Content,
  LanguageModelV4FinishReason,
  LanguageModelV4GenerateResult,
  LanguageModelV4StreamPart,
  LanguageModelV4StreamResult,
  LanguageModelV4Usage,
} from "@ai-sdk/provider";
import { planScriptedReply, SCRIPTED_URL, type ScriptedPlan } from "./scripted-plan";

export interface ScriptedModelOptions {
  /** Delay between text deltas, in milliseconds (env `SCRIPTED_MODEL_DELAY_MS`). */
  delayMs?: number;
}

export const SCRIPTED_PROVIDER = "scripted";
export const SCRIPTED_MODEL_ID = "scripted";
const TEXT_ID = "txt-0";

const FINISH_STOP: LanguageModelV4FinishReason = { unified: "stop", raw: "stop" };
const FINISH_TOOL_CALLS: LanguageModelV4FinishReason = { unified: "tool-calls", raw: "tool_calls" };

export function createScriptedModel(options: ScriptedModelOptions = {}): LanguageModelV4 {
  const delayMs = Math.max(0, options.delayMs ?? 0);
  return {
    specificationVersion: "v4",
    provider: SCRIPTED_PROVIDER,
    modelId: SCRIPTED_MODEL_ID,
    supportedUrls: {},
    async doStream(call) {
      throwIfAborted(call.abortSignal);
      const plan = planScriptedReply(call);
      if (plan.kind === "fail" && !plan.cleanupFails) throw plan.error;
      return {
        stream: scriptedStream(plan, delayMs, call.abortSignal),
        request: { url: SCRIPTED_URL, body: { prompt: call.prompt } },
      } satisfies LanguageModelV4StreamResult;
    },
    async doGenerate(call) {
      throwIfAborted(call.abortSignal);
      const plan = planScriptedReply(call);
      if (plan.kind === "fail") throw plan.error;
      const content: LanguageModelV4Content[] =
        plan.kind === "text"
          ? [{ type: "text", text: plan.text }]
          : plan.calls.map((c) => ({ type: "tool-call", ...c }));
      return {
        content,
        finishReason: plan.kind === "text" ? FINISH_STOP : FINISH_TOOL_CALLS,
        usage: emptyUsage(),
        warnings: [],
        request: { body: { prompt: call.prompt } },
        response: { modelId: SCRIPTED_MODEL_ID },
      } satisfies LanguageModelV4GenerateResult;
    },
  };
}

/** Splits text into word deltas (a word plus its trailing whitespace); they join to `text`. */
export function splitWords(text: string): string[] {
  return text.split(/(?<=\s)(?=\S)/).filter((word) => word.length > 0);
}

function scriptedStream(
  plan: ScriptedPlan,
  delayMs: number,
  signal: AbortSignal | undefined,
): ReadableStream<LanguageModelV4StreamPart> {
  const parts = planParts(plan);
  let index = 0;
  let done = false;
  let onAbort: (() => void) | undefined;
  const detach = () => {
    done = true;
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  };
  return new ReadableStream<LanguageModelV4StreamPart>(
    {
      start(controller) {
        if (!signal) return;
        onAbort = () => {
          if (done) return;
          detach();
          controller.error(abortError(signal));
        };
        signal.addEventListener("abort", onAbort);
      },
      async pull(controller) {
        if (done) return;
        const next = parts[index];
        if (next === undefined) {
          // The failing-cleanup variant stays open after its error part.
          if (plan.kind === "fail") return;
          detach();
          controller.close();
          return;
        }
        if (next.type === "text-delta" && index > 0 && parts[index - 1]?.type === "text-delta") {
          await sleep(delayMs, signal);
          if (delayMs <= 0 && index % YIELD_EVERY === 0) await yieldToEventLoop();
          if (done) return; // aborted while sleeping: already errored by the listener
        }
        index++;
        controller.enqueue(next);
      },
      cancel() {
        detach();
        if (plan.kind === "fail" && plan.cleanupFails) throw new Error("scripted cleanup failure");
      },
    },
    { highWaterMark: 0 },
  );
}

function planParts(plan: ScriptedPlan): LanguageModelV4StreamPart[] {
  const parts: LanguageModelV4StreamPart[] = [{ type: "stream-start", warnings: [] }];
  switch (plan.kind) {
    case "fail":
      parts.push({ type: "error", error: plan.error });
      return parts;
    case "text":
      parts.push({ type: "response-metadata", modelId: SCRIPTED_MODEL_ID });
      parts.push({ type: "text-start", id: TEXT_ID });
      for (const word of splitWords(plan.text)) {
        parts.push({ type: "text-delta", id: TEXT_ID, delta: word });
      }
      parts.push({ type: "text-end", id: TEXT_ID });
      parts.push({ type: "finish", usage: emptyUsage(), finishReason: FINISH_STOP });
      return parts;
    case "tool-calls":
      parts.push({ type: "response-metadata", modelId: SCRIPTED_MODEL_ID });
      for (const call of plan.calls) {
        parts.push({ type: "tool-input-start", id: call.toolCallId, toolName: call.toolName });
        parts.push({ type: "tool-input-delta", id: call.toolCallId, delta: call.input });
        parts.push({ type: "tool-input-end", id: call.toolCallId });
        parts.push({ type: "tool-call", ...call });
      }
      parts.push({ type: "finish", usage: emptyUsage(), finishReason: FINISH_TOOL_CALLS });
      return parts;
  }
}

function emptyUsage(): LanguageModelV4Usage {
  return {
    inputTokens: {
      total: undefined,
      noCache: undefined,
      cacheRead: undefined,
      cacheWrite: undefined,
    },
    outputTokens: { total: undefined, text: undefined, reasoning: undefined },
  };
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name === "AbortError") return reason;
  const detail =
    reason instanceof Error ? reason.message : reason === undefined ? "" : String(reason);
  return new DOMException(
    detail ? `The operation was aborted: ${detail}` : "The operation was aborted",
    "AbortError",
  );
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

const YIELD_EVERY = 1024;

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Sleeps `ms` (no timer at all for 0); an abort ends the sleep early without throwing. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done);
  });
}
