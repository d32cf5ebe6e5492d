/**
 * The Durable Streams HTTP face of one stream, run inside its Durable Object (where the live
 * waiters are). It only translates: headers and bodies in, StreamCore calls, status codes and
 * protocol headers out. All stream rules live in core.ts, shared with the RPC door.
 */
import {
  tooLarge as bodyTooLarge,
  DomainError,
  invalidInput,
  unsupportedOperation,
} from "../../errors/domain";
import { type SessionView, toClientEvent } from "../../sessions/client-view";
import { trace } from "../../trace";
import { isJsonType, isSseBinary } from "../content-type";
import type { AppendOutcome, StreamCore } from "../core";
import type { PageMessage, StreamMeta } from "../log";
import { decodeEvent, MAX_MESSAGE_BYTES } from "../messages";
import { acceptIntegerOffset, encodeOffset, parseOffset } from "../offsets";
import { nextCursor } from "./cursor";
import { protocolErrorResponse } from "./errors";
import {
  H,
  liveParam,
  offsetParam,
  parseExpiry,
  parseFork,
  parseProducer,
  parseStreamSeq,
  wantsClose,
} from "./headers";
import { base64, controlEvent, dataEvent, keepAlive, utf8 } from "./sse";

/** Internal headers set by the router (never taken from clients: the router strips them). */
export const INTERNAL = {
  name: "x-ds-stream-name",
  path: "x-ds-stream-path",
  forkSource: "x-ds-fork-source",
  /** Set by the sessions API: answer a GET as an EventSource stream (see eventSource). */
  eventSource: "x-ds-event-source",
  /**
   * Set by the sessions API: reads render events (with their offsets) in this view, `client`
   * (src/sessions/client-view.ts) or `full`, and accept integer offsets too.
   */
  view: "x-ds-session-view",
} as const;

function viewOf(request: Request): SessionView | null {
  const view = request.headers.get(INTERNAL.view);
  return view === "client" || view === "full" ? view : null;
}

/** Decoded events of a page as a session view shows them (left-out events are skipped). */
function viewEvents(view: SessionView, messages: PageMessage[]): unknown[] {
  const out: unknown[] = [];
  for (const m of messages) {
    const event = decodeEvent(m.offset, m.body, m.createdAt);
    const shown = view === "full" ? event : toClientEvent(event);
    if (shown !== null) out.push(shown);
  }
  return out;
}

export interface ProtocolSettings {
  longPollTimeoutMs: number;
  sseMaxDurationMs: number;
}

/** Largest request body accepted: a JSON batch may hold many messages, each under the row limit. */
export const MAX_BODY_BYTES = 8 * 1024 * 1024;
/** Catch-up responses are cut at about this size; the rest follows at Stream-Next-Offset. */
const READ_CHUNK_BYTES = 4 * 1024 * 1024;
const READ_CHUNK_MESSAGES = 50_000;
const SSE_KEEPALIVE_MS = 15_000;
const CACHEABLE = "private, max-age=60, stale-while-revalidate=300";

/**
 * EventSource reads of a session stream (`GET …/events` with `Accept: text/event-stream`):
 * resumes after `Last-Event-ID` (which a browser sends when it reconnects), else after the
 * `?offset=` of the URL (what a new EventSource after a reload uses), else from the start.
 * Both take an integer offset or the wire form.
 */
function eventSource(core: StreamCore, request: Request, settings: ProtocolSettings): Response {
  const meta = core.live(Date.now());
  const lastEventId = request.headers.get("last-event-id");
  let after: number;
  if (lastEventId !== null && lastEventId !== "") {
    const parsed = /^[0-9_]{1,40}$/.test(lastEventId)
      ? parseOffset(acceptIntegerOffset(lastEventId))
      : null;
    if (parsed?.kind !== "at" || parsed.position > meta.tail) {
      throw invalidInput(
        `Last-Event-ID must be an event offset between 0 and ${meta.tail}, got ${JSON.stringify(lastEventId.slice(0, 40))}`,
        undefined,
        "invalid_offset",
      );
    }
    after = parsed.position;
  } else {
    after = core.position(acceptIntegerOffset(offsetParam(new URL(request.url))), meta);
  }
  core.log.transaction(() => core.log.touch(Date.now()));
  return sse(core, request, after, settings, eventFramer(viewOf(request) ?? "full"));
}

export async function handleProtocol(
  core: StreamCore,
  request: Request,
  settings: ProtocolSettings,
): Promise<Response> {
  try {
    switch (request.method) {
      case "PUT":
        return await create(core, request);
      case "POST":
        return await append(core, request);
      case "GET":
        if (request.headers.has(INTERNAL.eventSource)) return eventSource(core, request, settings);
        return await read(core, request, settings);
      case "HEAD":
        return head(core);
      case "DELETE":
        core.delete();
        return new Response(null, { status: 204 });
      default:
        throw unsupportedOperation(`method ${request.method} is not allowed on a stream`, {
          allow: ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"],
        });
    }
  } catch (error) {
    await drainBody(request);
    if (error instanceof DomainError) return protocolErrorResponse(error);
    throw error;
  }
}

/**
 * An early refusal (a bad header, 404, 409, …) leaves the request body unread while the
 * worker is still piping the client's body here; the pipe then reads the client's request
 * after the response has gone ("Can't read from request stream after response has been
 * sent"). Reading the rest (bounded by the body limit, then cancelling) ends the pipe cleanly.
 */
export async function drainBody(request: Request): Promise<void> {
  if (!request.body || request.bodyUsed) return;
  await drainReader(request.body.getReader());
}

/**
 * How much of a refused body is read (and dropped) so that the client, still sending, gets to
 * read our answer: an HTTP/1.1 client whose upload is cut mid-way sees a connection reset
 * instead of the 413. Past this, the connection is cut.
 */
export const DRAIN_LIMIT_BYTES = 4 * MAX_BODY_BYTES;

/** Reads and drops what is left of a body (bounded by DRAIN_LIMIT_BYTES, then cancels). */
export async function drainReader(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  try {
    for (let read = 0; read <= DRAIN_LIMIT_BYTES; ) {
      const chunk = await reader.read();
      if (chunk.done) return;
      read += chunk.value.byteLength;
    }
    await reader.cancel();
  } catch {
    // The client went away: nothing left to drain.
  }
}

async function readBody(request: Request): Promise<Uint8Array> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) throw tooLarge();
  const bytes = new Uint8Array(await request.arrayBuffer());
  if (bytes.byteLength > MAX_BODY_BYTES) throw tooLarge();
  return bytes;
}

export const tooLarge = () =>
  bodyTooLarge(
    `request body exceeds ${MAX_BODY_BYTES} bytes; single messages are limited to ${MAX_MESSAGE_BYTES} bytes`,
  );

function streamHeaders(meta: StreamMeta, extra: Record<string, string> = {}): Headers {
  const headers = new Headers({
    "content-type": meta.content_type,
    [H.nextOffset]: encodeOffset(meta.tail),
    ...extra,
  });
  if (meta.closed_at !== null) headers.set(H.closed, "true");
  return headers;
}

// ---- PUT ----------------------------------------------------------------------------------

async function create(core: StreamCore, request: Request): Promise<Response> {
  const expiry = parseExpiry(request.headers);
  const fork = parseFork(request.headers, request.headers.get(INTERNAL.forkSource));
  const close = wantsClose(request.headers);
  const body = await readBody(request);
  const result = await core.create({
    name: request.headers.get(INTERNAL.name)!,
    path: request.headers.get(INTERNAL.path)!,
    contentType: request.headers.get("content-type"),
    ttlSeconds: expiry.ttlSeconds,
    expiresAt: expiry.expiresAt,
    close,
    fork,
    body,
  });
  const headers = streamHeaders(result.meta);
  if (result.created) headers.set("location", request.url.split("?")[0]!);
  return new Response(null, { status: result.created ? 201 : 200, headers });
}

// ---- POST ---------------------------------------------------------------------------------

async function append(core: StreamCore, request: Request): Promise<Response> {
  const producer = parseProducer(request.headers);
  const streamSeq = parseStreamSeq(request.headers);
  const close = wantsClose(request.headers);
  const bytes = await readBody(request);
  if (bytes.byteLength === 0 && !close) {
    throw invalidInput("an append needs a non-empty body (or Stream-Closed: true to close)");
  }
  const outcome = core.append({
    body:
      bytes.byteLength === 0
        ? null
        : { kind: "bytes", bytes, contentType: request.headers.get("content-type") },
    close: close ? { status: "ended", reason: null } : undefined,
    producer,
    streamSeq,
  });
  return new Response(null, appendStatus(outcome, producer !== null, bytes.byteLength === 0));
}

function appendStatus(
  outcome: AppendOutcome,
  withProducer: boolean,
  closeOnly: boolean,
): ResponseInit {
  const headers = new Headers({ [H.nextOffset]: encodeOffset(outcome.tail) });
  if (outcome.kind === "already-closed") {
    headers.set(H.closed, "true");
    return { status: 204, headers };
  }
  if (outcome.closed) headers.set(H.closed, "true");
  const producer = outcome.producer;
  if (producer) {
    headers.set(H.producerEpoch, String(producer.epoch));
    headers.set(H.producerSeq, String(producer.seq));
  }
  if (outcome.kind === "duplicate") return { status: 204, headers };
  return { status: withProducer && !closeOnly ? 200 : 204, headers };
}

// ---- HEAD ---------------------------------------------------------------------------------

function head(core: StreamCore): Response {
  const meta = core.live(Date.now());
  const headers = streamHeaders(meta, { "cache-control": "no-store" });
  if (meta.ttl_seconds !== null) headers.set(H.ttl, String(meta.ttl_seconds));
  else if (meta.expires_at !== null)
    headers.set(H.expiresAt, new Date(meta.expires_at).toISOString());
  return new Response(null, { status: 200, headers });
}

// ---- GET ----------------------------------------------------------------------------------

interface Chunk {
  messages: PageMessage[];
  next: number;
  upToDate: boolean;
  closedAtEnd: boolean;
}

/**
 * Small chunks are shared between readers: after a commit, every live reader at the same
 * position asks for the same range, and the log is immutable below its tail, so one read
 * (and one encoding, see `encodedData`) serves them all. Keyed by incarnation, range and
 * closed state; only small chunks are kept, and only a few.
 */
const sharedChunks = new WeakMap<StreamCore, Map<string, Chunk>>();
const SHARED_CHUNK_MESSAGES = 256;
const SHARED_CHUNKS = 8;

function readChunk(core: StreamCore, meta: StreamMeta, after: number): Chunk {
  const key = `${meta.id}:${after}:${meta.tail}:${meta.closed_at !== null}`;
  let shared = sharedChunks.get(core);
  const hit = shared?.get(key);
  if (hit) return hit;
  const messages = core.log.readPage(after, meta.tail, READ_CHUNK_MESSAGES, READ_CHUNK_BYTES);
  const next = messages.at(-1)?.offset ?? after;
  const upToDate = next === meta.tail;
  const chunk = { messages, next, upToDate, closedAtEnd: upToDate && meta.closed_at !== null };
  if (messages.length <= SHARED_CHUNK_MESSAGES) {
    if (!shared) {
      shared = new Map();
      sharedChunks.set(core, shared);
    }
    shared.set(key, chunk);
    if (shared.size > SHARED_CHUNKS) shared.delete(shared.keys().next().value!);
  }
  return chunk;
}

/** The SSE data of a (shared) chunk, encoded once (per session view). */
const encodedData = new WeakMap<Chunk, string>();
const encodedView: Record<SessionView, WeakMap<Chunk, string>> = {
  client: new WeakMap(),
  full: new WeakMap(),
};

function renderBody(contentType: string, messages: PageMessage[]): string | Uint8Array {
  if (isJsonType(contentType)) return `[${messages.map((m) => m.body as string).join(",")}]`;
  return concatBytes(messages);
}

function concatBytes(messages: PageMessage[]): Uint8Array {
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

async function read(
  core: StreamCore,
  request: Request,
  settings: ProtocolSettings,
): Promise<Response> {
  const url = new URL(request.url);
  const view = viewOf(request);
  const rawOffset = view === null ? offsetParam(url) : acceptIntegerOffset(offsetParam(url));
  const live = liveParam(url);
  const now = Date.now();
  const meta = core.live(now);
  if (live !== null && rawOffset === null)
    throw invalidInput(`live=${live} needs an offset`, undefined, "invalid_offset");
  const start = core.position(rawOffset, meta);
  core.log.transaction(() => core.log.touch(now));
  if (live === "sse") {
    const binary = isSseBinary(meta.content_type);
    const framer = protocolFramer(meta.content_type, url.searchParams.get("cursor"), view);
    return sse(core, request, start, settings, framer, binary ? { [H.sseEncoding]: "base64" } : {});
  }
  const cursor = live === "long-poll" ? nextCursor(now, url.searchParams.get("cursor")) : null;

  if (rawOffset === "now" && live === null) {
    const headers = streamHeaders(meta, { [H.upToDate]: "true", "cache-control": "no-store" });
    const empty = isJsonType(meta.content_type) || view !== null ? "[]" : null;
    return new Response(empty, { status: 200, headers });
  }

  let chunk = readChunk(core, meta, start);
  if (live === "long-poll" && chunk.messages.length === 0 && !chunk.closedAtEnd) {
    const wake = await core.waiters.wait(start, settings.longPollTimeoutMs, request.signal);
    const after = core.live(Date.now());
    chunk = readChunk(core, after, start);
    if (wake === "aborted" || chunk.messages.length === 0) {
      const headers = streamHeaders(after, { [H.upToDate]: "true", "cache-control": "no-store" });
      if (cursor !== null && after.closed_at === null) headers.set(H.cursor, cursor);
      return new Response(null, { status: 204, headers });
    }
  }
  if (live === "long-poll" && chunk.messages.length === 0) {
    // Closed stream at its tail: nothing will ever come, answer at once.
    return new Response(null, {
      status: 204,
      headers: streamHeaders(core.live(Date.now()), { [H.upToDate]: "true" }),
    });
  }

  const current = core.log.meta()!;
  const etag = `"${current.id}:${start}:${chunk.next}${chunk.closedAtEnd ? ":c" : ""}${view ? `:${view}` : ""}"`;
  const headers = new Headers({
    "content-type": current.content_type,
    [H.nextOffset]: encodeOffset(chunk.next),
    etag,
    "cache-control": chunk.upToDate && !chunk.closedAtEnd ? "no-store" : CACHEABLE,
  });
  if (chunk.upToDate) headers.set(H.upToDate, "true");
  if (chunk.closedAtEnd) headers.set(H.closed, "true");
  if (cursor !== null) headers.set(H.cursor, cursor);
  if (request.headers.get("if-none-match") === etag)
    return new Response(null, { status: 304, headers });
  const body =
    view === null
      ? renderBody(current.content_type, chunk.messages)
      : JSON.stringify(viewEvents(view, chunk.messages));
  if (view !== null) headers.set("content-type", "application/json");
  return new Response(body, { status: 200, headers });
}

// ---- SSE ----------------------------------------------------------------------------------

/** Renders what an SSE reader is sent for each chunk read ("" sends nothing). */
type SseFramer = (chunk: Chunk) => string;

/**
 * Durable Streams SSE: `data` events paired with `control` events (offset, cursor, state).
 * In a session view, the data is that view's events (each with its offset); a chunk whose
 * events are all left out sends only its control event.
 */
function protocolFramer(
  contentType: string,
  clientCursor: string | null,
  view: SessionView | null = null,
): SseFramer {
  const binary = isSseBinary(contentType);
  const json = isJsonType(contentType);
  let cursor = clientCursor;
  let sentControl = false;
  const cache = view === null ? encodedData : encodedView[view];
  const encodeData = (chunk: Chunk): string => {
    let data = cache.get(chunk);
    if (data === undefined) {
      const { messages } = chunk;
      if (view !== null) {
        const events = viewEvents(view, messages);
        data = events.length === 0 ? "" : JSON.stringify(events);
      } else if (json) data = `[${messages.map((m) => m.body as string).join(",")}]`;
      else {
        const bytes = concatBytes(messages);
        data = binary ? base64(bytes) : new TextDecoder().decode(bytes);
      }
      cache.set(chunk, data);
    }
    return data;
  };
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
    const encoded = chunk.messages.length > 0 ? encodeData(chunk) : "";
    const data =
      encoded !== "" || (view === null && chunk.messages.length > 0) ? dataEvent(encoded) : "";
    return data + controlEvent(control);
  };
}

/**
 * EventSource-style SSE for session streams: one unnamed SSE event (so `onmessage` fires) per
 * event of the view, `id:` carrying its integer offset so that a browser's automatic
 * `Last-Event-ID` resumes exactly after it. The data is the event as JSON (with `offset`); a
 * final `closed` event marks a closed stream.
 */
const eventFramer =
  (view: SessionView): SseFramer =>
  (chunk) => {
    let out = "";
    for (const event of viewEvents(view, chunk.messages) as { offset: number }[]) {
      out += `id: ${event.offset}\ndata: ${JSON.stringify(event)}\n\n`;
    }
    if (chunk.closedAtEnd) out += `event: closed\ndata: {}\n\n`;
    return out;
  };

function sse(
  core: StreamCore,
  request: Request,
  start: number,
  settings: ProtocolSettings,
  framer: SseFramer,
  extraHeaders: Record<string, string> = {},
): Response {
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  const stop = new AbortController();
  request.signal?.addEventListener("abort", () => stop.abort());
  const deadline = Date.now() + settings.sseMaxDurationMs;

  const pump = async () => {
    let position = start;
    while (!stop.signal.aborted && Date.now() < deadline) {
      const state = core.state(Date.now());
      if (state.kind !== "live") break;
      const chunk = readChunk(core, state.meta, position);
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
      // The write above awaited, so commits may have landed since the read: look again
      // before waiting. The check and the registration below have no await between them.
      if (core.log.meta() && core.log.meta()!.tail > position) continue;
      const wait = Math.min(SSE_KEEPALIVE_MS, deadline - Date.now());
      const reason = await core.waiters.wait(position, Math.max(1, wait), stop.signal);
      if (reason === "timeout" && Date.now() < deadline) await writer.write(utf8(keepAlive));
    }
  };

  pump()
    .catch(() => stop.abort())
    .finally(() => writer.close().catch(() => {}));

  const headers = new Headers({
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    [H.nextOffset]: encodeOffset(start),
    ...extraHeaders,
  });
  return new Response(readable, { status: 200, headers });
}
