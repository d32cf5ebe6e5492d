/**
 * The Durable Streams HTTP face of one stream, run inside its Durable Object (where the live
 * waiters are). It only translates: headers and bodies in, StreamCore calls, status codes and
 * protocol headers out. All stream rules live in core.ts, shared with the RPC door. The SSE
 * pump is sse.ts; shared chunks are the ChunkCache its Durable Object owns (chunks.ts); other
 * formats of the events than the protocol's are read views the app supplies (views.ts).
 */
import {
  tooLarge as bodyTooLarge,
  DomainError,
  invalidInput,
  unsupportedOperation,
} from "../../errors/domain";
import { isJsonType, isSseBinary } from "../content-type";
import type { AppendOutcome, StreamCore } from "../core";
import type { PageMessage, StreamMeta } from "../log";
import { MAX_MESSAGE_BYTES } from "../messages";
import { acceptIntegerOffset, encodeOffset, parseOffset } from "../offsets";
import type { ChunkCache } from "./chunks";
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
import { concatBytes, eventSourceFramer, protocolFramer, sseResponse } from "./sse";
import type { ReadView, ReadViews } from "./views";

/** Internal headers set by the router (never taken from clients: the router strips them). */
export const INTERNAL = {
  name: "x-ds-stream-name",
  path: "x-ds-stream-path",
  forkSource: "x-ds-fork-source",
  /** Answer a GET in the named read view as an EventSource stream (see eventSource). */
  eventSource: "x-ds-event-source",
  /** Reads render events (with their offsets) in this read view (views.ts), and accept integer offsets too. */
  view: "x-ds-view",
} as const;

export interface ProtocolSettings {
  longPollTimeoutMs: number;
  sseMaxDurationMs: number;
}

/** What the handler works on: the stream, its shared chunks, the app's read views, settings. */
export interface ProtocolContext {
  core: StreamCore;
  chunks: ChunkCache;
  views: ReadViews;
  settings: ProtocolSettings;
}

/** The read view a request names, if the app supplies it. */
function viewOf(ctx: ProtocolContext, request: Request): { name: string; view: ReadView } | null {
  const name = request.headers.get(INTERNAL.view);
  const view = name === null ? undefined : ctx.views.get(name);
  return name !== null && view ? { name, view } : null;
}

/** Largest request body accepted: a JSON batch may hold many messages, each under the row limit. */
export const MAX_BODY_BYTES = 8 * 1024 * 1024;
const CACHEABLE = "private, max-age=60, stale-while-revalidate=300";

/**
 * EventSource reads in a read view (the sessions API's `GET …/events` with `Accept:
 * text/event-stream`): resumes after `Last-Event-ID` (which a browser sends when it reconnects), else after the
 * `?offset=` of the URL (what a new EventSource after a reload uses), else from the start.
 * Both take an integer offset or the wire form.
 */
function eventSource(ctx: ProtocolContext, request: Request, view: ReadView): Response {
  const { core } = ctx;
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
  core.log.touchForRead(Date.now());
  const framer = eventSourceFramer(view);
  return sseResponse(core, ctx.chunks, request, after, ctx.settings.sseMaxDurationMs, framer);
}

export async function handleProtocol(ctx: ProtocolContext, request: Request): Promise<Response> {
  const { core } = ctx;
  try {
    switch (request.method) {
      case "PUT":
        return await create(core, request);
      case "POST":
        return await append(core, request);
      case "GET": {
        const view = viewOf(ctx, request);
        if (view && request.headers.has(INTERNAL.eventSource))
          return eventSource(ctx, request, view.view);
        return await read(ctx, request, view);
      }
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

function renderBody(contentType: string, messages: PageMessage[]): string | Uint8Array {
  if (isJsonType(contentType)) return `[${messages.map((m) => m.body as string).join(",")}]`;
  return concatBytes(messages);
}

async function read(
  ctx: ProtocolContext,
  request: Request,
  view: { name: string; view: ReadView } | null,
): Promise<Response> {
  const { core, chunks, settings } = ctx;
  const url = new URL(request.url);
  const rawOffset = view === null ? offsetParam(url) : acceptIntegerOffset(offsetParam(url));
  const live = liveParam(url);
  const now = Date.now();
  const meta = core.live(now);
  if (live !== null && rawOffset === null)
    throw invalidInput(`live=${live} needs an offset`, undefined, "invalid_offset");
  const start = core.position(rawOffset, meta);
  core.log.touchForRead(now);
  if (live === "sse") {
    const binary = isSseBinary(meta.content_type);
    const framer = protocolFramer(chunks, meta.content_type, url.searchParams.get("cursor"), view);
    const extra: Record<string, string> = binary ? { [H.sseEncoding]: "base64" } : {};
    return sseResponse(core, chunks, request, start, settings.sseMaxDurationMs, framer, extra);
  }
  const cursor = live === "long-poll" ? nextCursor(now, url.searchParams.get("cursor")) : null;

  if (rawOffset === "now" && live === null) {
    const headers = streamHeaders(meta, { [H.upToDate]: "true", "cache-control": "no-store" });
    const empty = isJsonType(meta.content_type) || view !== null ? "[]" : null;
    return new Response(empty, { status: 200, headers });
  }

  let chunk = chunks.read(core.log, meta, start);
  if (live === "long-poll" && chunk.messages.length === 0 && !chunk.closedAtEnd) {
    const wake = await core.waiters.wait(start, settings.longPollTimeoutMs, request.signal);
    const after = core.live(Date.now());
    chunk = chunks.read(core.log, after, start);
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
  const etag = `"${current.id}:${start}:${chunk.next}${chunk.closedAtEnd ? ":c" : ""}${view ? `:${view.name}` : ""}"`;
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
      : JSON.stringify(view.view.events(chunk.messages));
  if (view !== null) headers.set("content-type", "application/json");
  return new Response(body, { status: 200, headers });
}
