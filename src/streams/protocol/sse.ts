/**
 * Server-Sent Events for the Durable Streams live mode: the framing and the pump.
 *
 * Framing: each batch of data is one `data` event immediately followed by its `control`
 * event, written as one chunk so that a reader never sees data without the offset that
 * resumes after it. Payload lines are split on every line terminator (CR, LF, CRLF) and each
 * piece becomes its own `data:` line, so a payload can never inject an event boundary.
 *
 * The pump reads chunks from the stream and writes what a framer renders of them until the
 * client leaves, the stream closes or ends, or the connection's maximum duration is reached;
 * while idle it waits on the tail waiters and sends keep-alive comments (at most one per
 * SSE_KEEPALIVE_MS, from one timer per connection).
 *
 * Backpressure: the response body holds up to SSE_BUFFER_BYTES not yet taken by the client.
 * Below that a write resolves at once, so the pump goes back to the log for the next commit
 * instead of waiting for each frame to be pulled downstream (with the default, empty queue
 * every frame waited for the previous one's flush). Above it the write waits, so a reader
 * that stops reading holds at most that much plus one frame (one chunk, itself bounded).
 */
import { trace } from "../../trace";
import { isJsonType, isSseBinary } from "../content-type";
import type { StreamCore } from "../core";
import { encodeOffset } from "../offsets";
import type { WakeReason } from "../tail-waiters";
import type { Chunk, ChunkCache } from "./chunks";
import { nextCursor } from "./cursor";
import { H } from "./headers";
import type { ReadView } from "./views";

export interface ControlEvent {
  streamNextOffset: string;
  streamCursor?: string;
  upToDate?: true;
  streamClosed?: true;
}

const encoder = new TextEncoder();

export function dataEvent(payload: string): string {
  return `event: data\n${payload
    .split(/\r\n|\r|\n/)
    .map((line) => `data:${line}`)
    .join("\n")}\n\n`;
}

export function controlEvent(control: ControlEvent): string {
  return `event: control\ndata:${JSON.stringify(control)}\n\n`;
}

/** A comment line: keeps proxies from timing out an idle connection; parsers ignore it. */
export const keepAlive = ": keep-alive\n\n";

export const utf8 = (text: string) => encoder.encode(text);

export function base64(bytes: Uint8Array): string {
  let binary = "";
  const step = 0x8000;
  for (let i = 0; i < bytes.length; i += step) {
    binary += String.fromCharCode(...bytes.subarray(i, i + step));
  }
  return btoa(binary);
}

export function concatBytes(messages: Chunk["messages"]): Uint8Array {
  const parts = messages.map((m) =>
    typeof m.body === "string" ? utf8(m.body) : new Uint8Array(m.body),
  );
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/** Renders what an SSE reader is sent for each chunk read ("" sends nothing). */
export type SseFramer = (chunk: Chunk) => string;

/**
 * Durable Streams SSE: `data` events paired with `control` events (offset, cursor, state).
 * In a read view, the data is that view's events (each with its offset); a chunk whose
 * events are all left out sends only its control event.
 */
export function protocolFramer(
  chunks: ChunkCache,
  contentType: string,
  clientCursor: string | null,
  view: { name: string; view: ReadView } | null = null,
): SseFramer {
  const binary = isSseBinary(contentType);
  const json = isJsonType(contentType);
  let cursor = clientCursor;
  let sentControl = false;
  const encode = (chunk: Chunk): string => {
    const { messages } = chunk;
    if (view !== null) {
      const events = view.view.events(messages);
      return events.length === 0 ? "" : JSON.stringify(events);
    }
    if (json) return `[${messages.map((m) => m.body as string).join(",")}]`;
    const bytes = concatBytes(messages);
    return binary ? base64(bytes) : new TextDecoder().decode(bytes);
  };
  const format = view === null ? "" : `view:${view.name}`;
  return (chunk) => {
    if (chunk.messages.length === 0 && sentControl && !chunk.closedAtEnd) return "";
    sentControl = true;
    cursor = nextCursor(Date.now(), cursor);
    const control = {
      streamNextOffset: encodeOffset(chunk.next),
      ...(chunk.closedAtEnd ? {} : { streamCursor: cursor }),
      ...(chunk.upToDate ? { upToDate: true as const } : {}),
      ...(chunk.closedAtEnd ? { streamClosed: true as const } : {}),
    };
    const encoded = chunk.messages.length > 0 ? chunks.encoded(format, chunk, encode) : "";
    const data =
      encoded !== "" || (view === null && chunk.messages.length > 0) ? dataEvent(encoded) : "";
    return data + controlEvent(control);
  };
}

/** EventSource framing in a read view: what the view renders of each chunk's events. */
export const eventSourceFramer =
  (view: ReadView): SseFramer =>
  (chunk) =>
    view.eventSource(view.events(chunk.messages), chunk.closedAtEnd);

const SSE_KEEPALIVE_MS = 15_000;
/** Bytes an SSE response may hold for a slow reader before the pump waits (see above). */
export const SSE_BUFFER_BYTES = 64 * 1024;

/** An SSE response that pumps the stream from `start` through `framer`. */
export function sseResponse(
  core: StreamCore,
  chunks: ChunkCache,
  request: Request,
  start: number,
  maxDurationMs: number,
  framer: SseFramer,
  extraHeaders: Record<string, string> = {},
): Response {
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>(
    undefined,
    undefined,
    new ByteLengthQueuingStrategy({ highWaterMark: SSE_BUFFER_BYTES }),
  );
  const writer = writable.getWriter();
  const stop = new AbortController();
  request.signal?.addEventListener("abort", () => stop.abort());
  const deadline = Date.now() + maxDurationMs;

  // One keep-alive timer, one deadline timer and one abort listener per connection, not per
  // wait: a live reader waits once per commit, and a timer per wait cost more than the read.
  let parked: { wake: (reason: WakeReason) => void } | null = null;
  const wakeParked = (reason: WakeReason) => parked?.wake(reason);
  const onStop = () => wakeParked("aborted");
  stop.signal.addEventListener("abort", onStop);
  const keepAliveTimer = setInterval(() => wakeParked("timeout"), SSE_KEEPALIVE_MS);
  let expired = false;
  const deadlineTimer = setTimeout(
    () => {
      expired = true;
      wakeParked("timeout");
    },
    Math.max(1, maxDurationMs),
  );

  const pump = async () => {
    let position = start;
    while (!stop.signal.aborted && !expired && Date.now() < deadline) {
      const state = core.state(Date.now());
      if (state.kind !== "live") break;
      const chunk = chunks.read(core.log, state.meta, position);
      const frame = framer(chunk);
      if (chunk.messages.length > 0)
        trace("sse.write", () => ({
          stream: state.meta.path,
          offsets: chunk.messages.map((m) => m.offset),
        }));
      if (frame !== "") await writer.write(utf8(frame));
      if (chunk.messages.length > 0)
        trace("sse.flushed", () => ({
          stream: state.meta.path,
          offsets: chunk.messages.map((m) => m.offset),
        }));
      position = chunk.next;
      if (chunk.closedAtEnd) break;
      if (!chunk.upToDate) continue;
      // The write above may have waited, so commits may have landed since the read: look again
      // before waiting. The check and the registration below have no await between them.
      if (core.log.meta() && core.log.meta()!.tail > position) continue;
      if (stop.signal.aborted) break;
      const wait = core.waiters.park(position);
      parked = wait;
      const reason = await wait.woken;
      parked = null;
      if (reason === "timeout" && !stop.signal.aborted && !expired && Date.now() < deadline)
        await writer.write(utf8(keepAlive));
    }
  };

  pump()
    .catch(() => stop.abort())
    .finally(() => {
      clearInterval(keepAliveTimer);
      clearTimeout(deadlineTimer);
      stop.signal.removeEventListener("abort", onStop);
      return writer.close().catch(() => {});
    });

  const headers = new Headers({
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    [H.nextOffset]: encodeOffset(start),
    ...extraHeaders,
  });
  return new Response(readable, { status: 200, headers });
}
