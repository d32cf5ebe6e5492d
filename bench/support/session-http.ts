/**
 * HTTP helpers the session benchmarks share (bench/sessions*.ts, bench/trace-turn.ts,
 * bench/peers/run.ts): the dev key's headers, a JSON POST that fails loudly, a percentile,
 * and an SSE follower that resumes with Last-Event-ID when the server ends a response after
 * SSE_MAX_DURATION_MS, as a browser's EventSource does. Runs on Node 22 (type stripping).
 */
import { createParser, type EventSourceMessage } from "eventsource-parser";

export const AUTH = { authorization: "Bearer das_dev_local_development_key_0000" };
export const JSON_HEADERS = { ...AUTH, "content-type": "application/json" };

/** The p-th percentile (nearest rank, 0–100) of `values`; NaN if there are none. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** POSTs `body` as JSON with the dev key; throws on any status ≥ 300. */
export async function postJson(base: string, path: string, body: unknown): Promise<Response> {
  const res = await fetch(`${base}${path}`, {
    method: "POST",
    headers: JSON_HEADERS,
    body: JSON.stringify(body),
  });
  if (res.status >= 300) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
  return res;
}

/** Opens an SSE response and calls `onEvent` for every event until `close()`. */
export async function openSse(
  url: string,
  headers: Record<string, string>,
  onEvent: (event: string, data: string) => void,
) {
  const controller = new AbortController();
  const res = await fetch(url, { headers: { ...AUTH, ...headers }, signal: controller.signal });
  if (res.status !== 200) throw new Error(`SSE ${url}: ${res.status}`);
  const parser = createParser({ onEvent: (e) => onEvent(e.event ?? "message", e.data) });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const pump = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        parser.feed(decoder.decode(value, { stream: true }));
      }
    } catch {
      // aborted
    }
  })();
  return {
    close: async () => {
      controller.abort();
      await pump;
    },
  };
}

/**
 * Follows an SSE URL: `url(lastId)` gives the URL to (re)connect to, `onEvent` sees every
 * event. When the server ends the response, reconnects with Last-Event-ID unless closed or
 * `reconnect()` says no. Throws if the first connection is refused; resolves once connected.
 */
export async function followSse(
  url: (lastId: string | null) => string,
  onEvent: (event: EventSourceMessage) => void,
  reconnect: () => boolean = () => true,
): Promise<{ close(): Promise<void> }> {
  const controller = new AbortController();
  let lastId: string | null = null;
  let closed = false;
  const parser = createParser({
    onEvent: (e) => {
      if (e.id) lastId = e.id;
      onEvent(e);
    },
  });
  const connect = async () => {
    const res = await fetch(url(lastId), {
      headers: {
        ...AUTH,
        accept: "text/event-stream",
        ...(lastId === null ? {} : { "last-event-id": lastId }),
      },
      signal: controller.signal,
    });
    if (res.status !== 200) throw new Error(`SSE: ${res.status} ${await res.text()}`);
    return res.body!.getReader();
  };
  let reader = await connect();
  const pump = (async () => {
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) {
          if (closed || !reconnect()) return;
          parser.reset();
          reader = await connect();
          continue;
        }
        parser.feed(decoder.decode(value, { stream: true }));
      }
    } catch {
      // aborted
    }
  })();
  return {
    close: async () => {
      closed = true;
      controller.abort();
      await pump;
    },
  };
}
