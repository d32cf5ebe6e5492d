/**
 * Consuming a model's stream: `collectStream` runs `doStream` on any `LanguageModelV4`, hands
 * each text delta to a callback (awaited, in order) and returns the text, the tool calls and
 * the finish reason. Every model failure becomes a `ModelError` with a retry verdict:
 *
 * - `doStream` rejecting (HTTP providers reject with an `APICallError` on a non-2xx response),
 *   an `error` stream part, or the stream itself erroring are all failures;
 * - `APICallError` → `status` = its status code; retryable for 408/409/429/5xx (or, without a
 *   status, the error's own `isRetryable`, which the AI SDK sets for network failures);
 *   `retryAfter` carries the response's `Retry-After` header for `retryDelayMs`;
 * - an abort of `options.abortSignal` → `cancelled: true`, never retryable (the collector also
 *   cancels the stream itself on abort, so a model that ignores the signal cannot hang it);
 * - anything else → not retryable unless clearly transient (a numeric retryable status on the
 *   error, a network-level failure, a timeout, or an OpenAI-style error chunk whose type/code
 *   says rate limit, overload or server error).
 *
 * An error thrown by `onDelta` is not a model failure: it is rethrown unchanged.
 * When the collector stops reading early (failure or abort) it cancels the stream. If that
 * cleanup fails, the cleanup error is logged (structured JSON on console.error) and the FIRST
 * error is thrown: a cleanup error never masks the original failure.
 */
import {
  APICallError,
  type LanguageModelV4,
  type LanguageModelV4CallOptions,
  type LanguageModelV4StreamPart,
} from "@ai-sdk/provider";
import { backoffMs, EQUAL_JITTER } from "../../backoff";
import type { ToolCall } from "../events";

export interface CollectedResponse {
  text: string;
  toolCalls: ToolCall[];
  /** The unified finish reason (`stop`, `tool-calls`, `length`, …; `interrupted` if none came). */
  finishReason: string;
}

export interface ModelErrorInit {
  status?: number;
  retryable: boolean;
  cancelled?: boolean;
  /** The raw `Retry-After` response header, when the provider sent one. */
  retryAfter?: string;
  cause?: unknown;
}

export class ModelError extends Error {
  override readonly name = "ModelError";
  readonly status?: number;
  readonly retryable: boolean;
  readonly cancelled: boolean;
  readonly retryAfter?: string;

  constructor(message: string, init: ModelErrorInit) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    if (init.status !== undefined) this.status = init.status;
    this.retryable = init.cancelled ? false : init.retryable;
    this.cancelled = init.cancelled ?? false;
    if (init.retryAfter !== undefined) this.retryAfter = init.retryAfter;
  }

  /** A JSON-safe summary (for events and logs). */
  toJSON(): { message: string; status?: number; retryable: boolean; cancelled: boolean } {
    return {
      message: this.message,
      ...(this.status !== undefined ? { status: this.status } : {}),
      retryable: this.retryable,
      cancelled: this.cancelled,
    };
  }
}

const MAX_MESSAGE = 2_000;
const CLEANUP_TIMEOUT_MS = 1_000;

export async function collectStream(
  model: LanguageModelV4,
  options: LanguageModelV4CallOptions,
  onDelta: (text: string) => void | Promise<void>,
): Promise<CollectedResponse> {
  const signal = options.abortSignal;
  if (signal?.aborted) throw toModelError(signal.reason, signal);

  let reader: ReadableStreamDefaultReader<LanguageModelV4StreamPart>;
  try {
    const result = await model.doStream(options);
    reader = result.stream.getReader();
  } catch (error) {
    throw toModelError(error, signal);
  }

  // Set once the stream closed or errored by itself: there is nothing left to cancel.
  let settled = false;
  // Cancelling an already errored stream rejects with the stream's own error: not a cleanup
  // failure. `reader.closed` rejects with that same error as soon as the stream errors.
  let storedError: { error: unknown } | undefined;
  reader.closed.catch((error: unknown) => {
    storedError ??= { error };
  });
  let cleanup: Promise<void> | undefined;
  let firstError: unknown;
  const cancelStream = (reason: unknown): Promise<void> => {
    if (settled) return Promise.resolve();
    cleanup ??= reader.cancel(reason).then(
      () => undefined,
      (cleanupError: unknown) => {
        if (storedError && storedError.error === cleanupError) return;
        logCleanupError(model, cleanupError, firstError ?? reason);
      },
    );
    return cleanup;
  };
  const onAbort = () => void cancelStream(signal?.reason);
  signal?.addEventListener("abort", onAbort);

  let text = "";
  const toolCalls: ToolCall[] = [];
  let finishReason: string | undefined;
  let failed = false;
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<LanguageModelV4StreamPart>;
      try {
        chunk = await reader.read();
      } catch (error) {
        settled = true;
        throw toModelError(error, signal);
      }
      if (signal?.aborted) throw toModelError(signal.reason, signal);
      if (chunk.done) {
        settled = true;
        break;
      }
      const part = chunk.value;
      switch (part.type) {
        case "text-delta":
          if (part.delta.length === 0) break;
          text += part.delta;
          await onDelta(part.delta);
          break;
        case "tool-call":
          toolCalls.push({
            toolCallId: part.toolCallId,
            toolName: part.toolName,
            input: part.input,
          });
          break;
        case "finish":
          finishReason = part.finishReason.unified;
          break;
        case "error":
          throw toModelError(part.error, signal);
      }
    }
  } catch (error) {
    failed = true;
    firstError = error;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }

  if (failed) {
    await withTimeout(cancelStream(firstError), CLEANUP_TIMEOUT_MS);
    try {
      reader.releaseLock();
    } catch {
      // A pending read keeps the lock in older runtimes; the stream is cancelled anyway.
    }
    throw firstError;
  }
  return { text, toolCalls, finishReason: finishReason ?? "interrupted" };
}

/** Maps anything a model or its stream threw into a `ModelError` with a retry verdict. */
export function toModelError(error: unknown, signal?: AbortSignal): ModelError {
  if (error instanceof ModelError) return error;
  if (signal?.aborted || isAbortError(error)) {
    const reason = signal?.aborted ? signal.reason : error;
    return new ModelError(`model request cancelled${detail(reason)}`, {
      retryable: false,
      cancelled: true,
      cause: error,
    });
  }
  if (APICallError.isInstance(error)) {
    const status = error.statusCode;
    const retryAfter = header(error.responseHeaders, "retry-after");
    return new ModelError(truncate(error.message), {
      ...(status !== undefined ? { status } : {}),
      retryable: status !== undefined ? isRetryableStatus(status) : error.isRetryable,
      ...(retryAfter !== undefined ? { retryAfter } : {}),
      cause: error,
    });
  }
  const status = statusOf(error);
  const message = messageOf(error);
  return new ModelError(truncate(message), {
    ...(status !== undefined ? { status } : {}),
    retryable: status !== undefined ? isRetryableStatus(status) : isTransient(error, message),
    cause: error,
  });
}

/** 408, 409, 429 and every 5xx are worth retrying; other statuses are final. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || (status >= 500 && status <= 599);
}

export interface RetryDelayOptions {
  /** Delay for the first retry before jitter (default 1000 ms). */
  baseMs?: number;
  /** Cap of the exponential delay (default 30000 ms). */
  maxMs?: number;
  /** Cap applied to a server's Retry-After (default 300000 ms). */
  maxRetryAfterMs?: number;
  /** Source of randomness in [0, 1) (default Math.random). */
  random?: () => number;
  /** Clock for HTTP-date Retry-After values (default Date.now). */
  now?: () => number;
}

/**
 * Delay before retry number `attempt` (1 = the first retry). Without Retry-After it is
 * exponential with "equal jitter": uniform in [d/2, d] where d = min(maxMs, baseMs·2^(attempt-1)).
 * A valid Retry-After header (delta-seconds or an HTTP date) wins, capped at maxRetryAfterMs.
 */
export function retryDelayMs(
  attempt: number,
  retryAfterHeader?: string | null,
  options: RetryDelayOptions = {},
): number {
  const retryAfter = parseRetryAfterMs(retryAfterHeader, options.now ?? Date.now);
  if (retryAfter !== undefined) return Math.min(retryAfter, options.maxRetryAfterMs ?? 300_000);
  return backoffMs(
    attempt,
    { baseMs: options.baseMs ?? 1_000, maxMs: options.maxMs ?? 30_000, jitter: EQUAL_JITTER },
    options.random,
  );
}

/** Parses a Retry-After header (seconds or an HTTP date) into milliseconds from now. */
export function parseRetryAfterMs(
  value: string | null | undefined,
  now: () => number = Date.now,
): number | undefined {
  if (value == null) return undefined;
  const trimmed = value.trim();
  if (trimmed === "") return undefined;
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  // Otherwise only an HTTP date (e.g. "Wed, 21 Oct 2015 07:28:00 GMT") counts.
  if (!/^[A-Za-z]{3},? /.test(trimmed)) return undefined;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now());
}

function isAbortError(error: unknown): boolean {
  return (
    typeof error === "object" &&
    error !== null &&
    (error as { name?: unknown }).name === "AbortError"
  );
}

const TRANSIENT_MESSAGE =
  /network connection lost|fetch failed|econnreset|econnrefused|etimedout|socket hang up|connection (reset|refused|closed)|timed? ?out|temporarily unavailable|overloaded/i;
const TRANSIENT_KIND = /rate.?limit|overload|server_error|timeout|unavailable/i;

function isTransient(error: unknown, message: string): boolean {
  if (typeof error !== "object" || error === null) return false;
  const { name, type, code } = error as { name?: unknown; type?: unknown; code?: unknown };
  if (name === "TimeoutError") return true;
  if (typeof type === "string" && TRANSIENT_KIND.test(type)) return true;
  if (typeof code === "string" && TRANSIENT_KIND.test(code)) return true;
  return error instanceof Error && TRANSIENT_MESSAGE.test(message);
}

function statusOf(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const e = error as { status?: unknown; statusCode?: unknown; code?: unknown };
  for (const value of [e.statusCode, e.status, e.code]) {
    const n = typeof value === "string" && /^\d{3}$/.test(value) ? Number(value) : value;
    if (typeof n === "number" && Number.isInteger(n) && n >= 100 && n <= 599) return n;
  }
  return undefined;
}

function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  if (typeof error === "string") return error;
  if (typeof error === "object" && error !== null) {
    const message = (error as { message?: unknown }).message;
    if (typeof message === "string" && message !== "") return message;
    try {
      return JSON.stringify(error);
    } catch {
      return "model stream error";
    }
  }
  return String(error);
}

function detail(reason: unknown): string {
  if (reason === undefined) return "";
  const text = reason instanceof Error ? reason.message : String(reason);
  return text ? `: ${truncate(text)}` : "";
}

function header(headers: Record<string, string> | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name) return value;
  }
  return undefined;
}

function truncate(text: string): string {
  return text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}…` : text;
}

function logCleanupError(model: LanguageModelV4, cleanupError: unknown, firstError: unknown): void {
  console.error(
    JSON.stringify({
      msg: "model stream cleanup failed",
      provider: model.provider,
      modelId: model.modelId,
      error: truncate(messageOf(cleanupError)),
      firstError: firstError === undefined ? null : truncate(messageOf(firstError)),
    }),
  );
}

async function withTimeout(promise: Promise<void>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      promise,
      new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
