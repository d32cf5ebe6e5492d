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
import {
  APICallError,
  type LanguageModelV4,
  type LanguageModelV4CallOptions,
  type LanguageModelV4Content,
  type LanguageModelV4FinishReason,
  type LanguageModelV4GenerateResult,
  type LanguageModelV4Prompt,
  type LanguageModelV4StreamPart,
  type LanguageModelV4StreamResult,
  type LanguageModelV4ToolApprovalResponsePart,
  type LanguageModelV4ToolResultOutput,
  type LanguageModelV4ToolResultPart,
  type LanguageModelV4Usage,
} from "@ai-sdk/provider";
import type { ToolCall } from "../events";
import { isRetryableStatus } from "./collect";

export interface ScriptedModelOptions {
  /** Delay between text deltas, in milliseconds (env `SCRIPTED_MODEL_DELAY_MS`). */
  delayMs?: number;
}

/** The options the scripted model reads from `providerOptions.scripted`. */
export interface ScriptedProviderOptions {
  requestId?: string;
  attempt?: number;
  /** `compaction`: summarise the transcript text of the last user message. */
  task?: "compaction";
}

/** What the scripted model will do for one request (exported for tests and debugging). */
export type ScriptedPlan =
  | { kind: "text"; text: string }
  | { kind: "tool-calls"; calls: ToolCall[] }
  | { kind: "fail"; error: APICallError; cleanupFails: boolean };

export const SCRIPTED_PROVIDER = "scripted";
export const SCRIPTED_MODEL_ID = "scripted";
const SCRIPTED_URL = "scripted://scripted/v1/chat";
const TEXT_ID = "txt-0";

const TOOL_NAME = "[a-z_][a-z0-9_]*";
const CALL_LINE = new RegExp(`^call[ \\t]+(${TOOL_NAME})(?:[ \\t]+(.*))?$`);
const CALL_BLOCK = new RegExp(`^call[ \\t]+(${TOOL_NAME})(?:\\s+([\\s\\S]*))?$`);
const FAIL = /^fail\s+(\d{3})\s+(\d+|always)(\s+cleanup)?$/;
const REPLY = /^reply\s+(\d{1,8})$/;
const MAX_SCRIPTED_REPLY_BYTES = 16 * 1024 * 1024;
const REPLY_WORDS = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor ";

/** The text of `reply <bytes>`: words and spaces, exactly `bytes` ASCII characters. */
export function scriptedReplyText(bytes: number): string {
  const whole = REPLY_WORDS.repeat(Math.floor(bytes / REPLY_WORDS.length));
  return whole + REPLY_WORDS.slice(0, bytes - whole.length);
}

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

/** Decides the scripted model's answer to one request. Pure and deterministic. */
export function planScriptedReply(call: LanguageModelV4CallOptions): ScriptedPlan {
  const { requestId, attempt } = readScriptedOptions(call);
  if (call.providerOptions?.scripted?.task === "compaction")
    return { kind: "text", text: compactionSummary(lastUserText(call.prompt)) };
  const last = call.prompt.at(-1);
  if (last?.role === "tool") return { kind: "text", text: toolResultsSentence(last.content) };

  const message = lastUserText(call.prompt);
  const calls = parseToolCalls(message, requestId);
  if (calls) return { kind: "tool-calls", calls };

  const reply = REPLY.exec(message.trim());
  if (reply && Number(reply[1]) <= MAX_SCRIPTED_REPLY_BYTES)
    return { kind: "text", text: scriptedReplyText(Number(reply[1])) };

  const fail = FAIL.exec(message.trim());
  if (fail) {
    const status = Number(fail[1]);
    const count = fail[2] === "always" ? Number.POSITIVE_INFINITY : Number(fail[2]);
    if (attempt <= count) {
      return {
        kind: "fail",
        cleanupFails: fail[3] !== undefined,
        error: scriptedApiError(status, attempt, fail[2] ?? "", call.prompt),
      };
    }
  }
  if (message.trim() === "history") return { kind: "text", text: describePrompt(call.prompt) };
  return { kind: "text", text: `You said: ${message}` };
}

/** Longest summary the scripted model writes, in characters. */
export const SCRIPTED_SUMMARY_MAX_CHARS = 2_000;

/**
 * The scripted compaction: `Summary of <n> messages: ` and the first five words of each
 * covered message (the lines of the transcript text that start with `[role]`), capped.
 */
export function compactionSummary(transcript: string): string {
  const lines = transcript.split("\n").filter((line) => /^\[[a-z]+[^\]]*\] /.test(line));
  const excerpts = lines.map((line) => line.split(/\s+/).slice(0, 6).join(" "));
  const text = `Summary of ${lines.length} messages: ${excerpts.join(" | ")}`;
  return text.length > SCRIPTED_SUMMARY_MAX_CHARS
    ? text.slice(0, SCRIPTED_SUMMARY_MAX_CHARS)
    : text;
}

/** `history`: what the prompt holds, so tests can see which history reached the model. */
function describePrompt(prompt: LanguageModelV4Prompt): string {
  const system = prompt.find((m) => m.role === "system");
  const summary = system?.role === "system" && system.content.includes(SUMMARY_HEADING);
  const messages = prompt.filter((m) => m.role !== "system");
  const first = messages[0];
  const firstText =
    first?.role === "user" || first?.role === "assistant"
      ? first.content.flatMap((part) => (part.type === "text" ? [part.text] : [])).join(" ")
      : "";
  return `History: ${messages.length} messages; summary: ${summary ? "yes" : "no"}; first: ${JSON.stringify(firstText.slice(0, 60))}`;
}

/** Heads the compaction summary inside the system prompt (see context.ts). */
export const SUMMARY_HEADING = "Summary of the conversation so far:";

/** Splits text into word deltas (a word plus its trailing whitespace); they join to `text`. */
export function splitWords(text: string): string[] {
  return text.split(/(?<=\s)(?=\S)/).filter((word) => word.length > 0);
}

function readScriptedOptions(call: LanguageModelV4CallOptions): {
  requestId: string | undefined;
  attempt: number;
} {
  const raw = call.providerOptions?.scripted;
  const requestId = typeof raw?.requestId === "string" ? raw.requestId : undefined;
  const attempt =
    typeof raw?.attempt === "number" && Number.isFinite(raw.attempt) ? raw.attempt : 1;
  return { requestId, attempt };
}

function lastUserText(prompt: LanguageModelV4Prompt): string {
  for (let i = prompt.length - 1; i >= 0; i--) {
    const message = prompt[i];
    if (message?.role !== "user") continue;
    return message.content
      .filter((part) => part.type === "text")
      .map((part) => part.text)
      .join("\n");
  }
  return "";
}

function parseToolCalls(message: string, requestId: string | undefined): ToolCall[] | null {
  const text = message.trim();
  if (!text.startsWith("call")) return null;
  const lines = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
  let parsed: Array<[string, string]> | null = null;
  const perLine = lines.map((line) => CALL_LINE.exec(line));
  if (perLine.every((m) => m !== null)) {
    parsed = perLine.map((m) => [m?.[1] ?? "", m?.[2] ?? ""]);
  } else {
    // One call whose JSON arguments span several lines.
    const block = CALL_BLOCK.exec(text);
    if (block) parsed = [[block[1] ?? "", block[2] ?? ""]];
  }
  if (!parsed) return null;
  return parsed.map(([toolName, args], i) => ({
    toolCallId: requestId ? `${requestId}-call-${i}` : `call-${i}`,
    toolName,
    input: normalizeArgs(args),
  }));
}

function normalizeArgs(args: string): string {
  const trimmed = args.trim();
  if (trimmed === "") return "{}";
  try {
    return JSON.stringify(JSON.parse(trimmed));
  } catch {
    return trimmed;
  }
}

function toolResultsSentence(
  content: ReadonlyArray<LanguageModelV4ToolResultPart | LanguageModelV4ToolApprovalResponsePart>,
): string {
  const items: string[] = [];
  for (const part of content) {
    if (part.type === "tool-result") items.push(`${part.toolName} ${renderOutput(part.output)}`);
  }
  return `Tool results: ${items.length > 0 ? items.join("; ") : "none"}.`;
}

function renderOutput(output: LanguageModelV4ToolResultOutput): string {
  switch (output.type) {
    case "text":
    case "json":
      return `returned ${json(output.value)}`;
    case "error-text":
    case "error-json":
      return `failed with ${json(output.value)}`;
    case "execution-denied":
      return output.reason ? `was denied (${json(output.reason)})` : "was denied";
    case "content":
      return `returned ${json(output.value)}`;
  }
}

function json(value: unknown): string {
  return JSON.stringify(value) ?? "null";
}

function scriptedApiError(
  status: number,
  attempt: number,
  count: string,
  prompt: LanguageModelV4Prompt,
): APICallError {
  const message = `scripted failure: status ${status} (attempt ${attempt}, failing ${count})`;
  return new APICallError({
    message,
    url: SCRIPTED_URL,
    requestBodyValues: { prompt },
    statusCode: status,
    responseHeaders: { "content-type": "application/json" },
    responseBody: JSON.stringify({ error: { message } }),
    isRetryable: isRetryableStatus(status),
  });
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
