/**
 * A session's events as an async iterator that survives disconnects. It reads the session's
 * EventSource view (`GET …/events`, `Accept: text/event-stream`, one SSE event per stream
 * event with `id:` = its offset) with fetch — so it can send a Bearer token and
 * `Last-Event-ID` — and parses it with eventsource-parser. When the connection ends (server
 * time limit, network loss, a deploy) it reconnects with `Last-Event-ID` = the last offset it
 * yielded: nothing is skipped, and an event at or below that offset is never yielded twice.
 * Transient failures back off exponentially (with jitter, capped); answers that cannot get
 * better by retrying (4xx other than 408/429) end the iteration with a SessionApiError.
 * The stream's `closed` event (the session was deleted) ends the iteration.
 */

import { createParser, type EventSourceMessage } from "eventsource-parser";
import { backoffMs, EQUAL_JITTER } from "../backoff";
import { SessionApiError } from "./errors";
import type { SessionEvent } from "./types";

export interface EventsOptions {
  /** The last offset already seen: events after it are yielded. 0 (default) = from the start. */
  after?: number;
  /** Aborting ends the iteration (and closes the connection). */
  signal?: AbortSignal;
  /** Reconnect backoff bounds. Defaults: 250 ms doubling up to 10 s. */
  minRetryMs?: number;
  maxRetryMs?: number;
  /** Called before each reconnect, with the offset it resumes after and why. */
  onReconnect?: (info: { after: number; attempt: number; error: unknown }) => void;
}

/** Opens one connection that resumes after `after`. */
export type OpenEvents = (after: number, signal: AbortSignal) => Promise<Response>;

/** A connection shorter than this that yielded nothing counts as a failure (backs off). */
const HEALTHY_CONNECTION_MS = 1_000;

export async function* resumableEvents(
  open: OpenEvents,
  options: EventsOptions = {},
): AsyncGenerator<SessionEvent, void, undefined> {
  let after = options.after ?? 0;
  const minRetry = options.minRetryMs ?? 250;
  const maxRetry = options.maxRetryMs ?? 10_000;
  const outer = options.signal;
  let failures = 0;
  let lastError: unknown = null;
  while (!outer?.aborted) {
    if (failures > 0) {
      options.onReconnect?.({ after, attempt: failures, error: lastError });
      const backoff = { baseMs: minRetry, maxMs: maxRetry, jitter: EQUAL_JITTER };
      await sleep(backoffMs(failures, backoff), outer);
      if (outer?.aborted) return;
    }
    const connection = new AbortController();
    const stop = () => connection.abort(outer?.reason);
    outer?.addEventListener("abort", stop, { once: true });
    const started = Date.now();
    let yielded = false;
    try {
      const response = await open(after, connection.signal);
      if (!response.ok) {
        const error = await SessionApiError.fromResponse(response);
        if (error.status >= 400 && error.status < 500 && ![408, 429].includes(error.status)) {
          throw error;
        }
        lastError = error;
        failures++;
        continue;
      }
      if (!response.body) throw new SessionApiError(502, "no_body", "event stream has no body");
      for await (const message of sseMessages(response.body, connection.signal)) {
        if (message.event === "closed") return;
        if (message.event !== undefined && message.event !== "message") continue;
        const event = JSON.parse(message.data) as SessionEvent;
        const offset = message.id !== undefined ? Number(message.id) : event.offset;
        if (!(offset > after)) continue; // already yielded
        after = offset;
        yielded = true;
        failures = 0;
        yield event;
      }
      // The server ended the response (its time limit): resume at once unless it looked broken.
      lastError = new Error("event stream ended");
      if (!yielded && Date.now() - started < HEALTHY_CONNECTION_MS) failures++;
    } catch (error) {
      if (
        error instanceof SessionApiError &&
        error.status < 500 &&
        error.status !== 408 &&
        error.status !== 429
      ) {
        throw error;
      }
      if (outer?.aborted) return;
      lastError = error;
      if (!yielded) failures++;
    } finally {
      outer?.removeEventListener("abort", stop);
      connection.abort();
    }
  }
}

/** SSE messages of a response body, parsed by eventsource-parser. */
async function* sseMessages(
  body: ReadableStream<Uint8Array>,
  signal: AbortSignal,
): AsyncGenerator<EventSourceMessage> {
  const queue: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (message) => queue.push(message) });
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  // Not every fetch ties the body to the request's signal (an in-process app.fetch does not):
  // cancelling the reader ends a pending read at once.
  const cancel = () => void reader.cancel().catch(() => {});
  signal.addEventListener("abort", cancel, { once: true });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      parser.feed(value);
      while (queue.length > 0) yield queue.shift()!;
    }
  } finally {
    signal.removeEventListener("abort", cancel);
    await reader.cancel().catch(() => {});
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
