/**
 * Parsers for the Durable Streams request headers and query parameters. Each returns a
 * typed value or throws a 400 naming the header and the rule it broke, before any state
 * is read or changed. Header names and formats follow PROTOCOL.md of durable-streams.
 */
import { invalidInput } from "../../errors/domain";
import { checkTtl, parseExpiresAt } from "../expiry";

export const H = {
  nextOffset: "Stream-Next-Offset",
  cursor: "Stream-Cursor",
  upToDate: "Stream-Up-To-Date",
  closed: "Stream-Closed",
  seq: "Stream-Seq",
  ttl: "Stream-TTL",
  expiresAt: "Stream-Expires-At",
  forkedFrom: "Stream-Forked-From",
  forkOffset: "Stream-Fork-Offset",
  forkSubOffset: "Stream-Fork-Sub-Offset",
  producerId: "Producer-Id",
  producerEpoch: "Producer-Epoch",
  producerSeq: "Producer-Seq",
  producerExpectedSeq: "Producer-Expected-Seq",
  producerReceivedSeq: "Producer-Received-Seq",
  sseEncoding: "Stream-SSE-Data-Encoding",
} as const;

const DECIMAL = /^(0|[1-9][0-9]*)$/;
const MAX_HEADER_CHARS = 1024;

function header(headers: Headers, name: string): string | null {
  const value = headers.get(name);
  if (value !== null && value.length > MAX_HEADER_CHARS) {
    throw invalidInput(
      `${name} is longer than ${MAX_HEADER_CHARS} characters`,
      undefined,
      "invalid_header",
    );
  }
  return value;
}

/** A non-negative decimal integer with no sign, leading zeros, point or exponent. */
function decimal(name: string, raw: string): number {
  const value = Number(raw);
  if (!DECIMAL.test(raw) || !Number.isSafeInteger(value)) {
    throw invalidInput(
      `${name} must be a non-negative decimal integer, got ${JSON.stringify(raw)}`,
      undefined,
      "invalid_header",
    );
  }
  return value;
}

export interface Expiry {
  ttlSeconds: number | null;
  expiresAt: number | null;
}

/** Expiry headers, strict RFC 3339 and within the bounds of ../expiry.ts (else a 400 naming them). */
export function parseExpiry(headers: Headers, now = Date.now()): Expiry {
  const ttl = header(headers, H.ttl);
  const at = header(headers, H.expiresAt);
  if (ttl !== null && at !== null) {
    throw invalidInput(
      `send either ${H.ttl} or ${H.expiresAt}, not both`,
      undefined,
      "invalid_header",
    );
  }
  return {
    ttlSeconds: ttl === null ? null : checkTtl(decimal(H.ttl, ttl), H.ttl),
    expiresAt: at === null ? null : parseExpiresAt(at, now, H.expiresAt),
  };
}

export const wantsClose = (headers: Headers) => header(headers, H.closed)?.toLowerCase() === "true";

export interface ProducerHeaders {
  id: string;
  epoch: number;
  seq: number;
}

/** All three producer headers or none; a partial or malformed set is a 400. */
export function parseProducer(headers: Headers): ProducerHeaders | null {
  const id = header(headers, H.producerId);
  const epoch = header(headers, H.producerEpoch);
  const seq = header(headers, H.producerSeq);
  if (id === null && epoch === null && seq === null) return null;
  if (id === null || epoch === null || seq === null) {
    throw invalidInput(
      `${H.producerId}, ${H.producerEpoch} and ${H.producerSeq} must be sent together`,
      undefined,
      "invalid_header",
    );
  }
  if (id.trim() === "")
    throw invalidInput(`${H.producerId} must not be empty`, undefined, "invalid_header");
  return { id, epoch: decimal(H.producerEpoch, epoch), seq: decimal(H.producerSeq, seq) };
}

export function parseStreamSeq(headers: Headers): string | null {
  const seq = header(headers, H.seq);
  if (seq === "") throw invalidInput(`${H.seq} must not be empty`, undefined, "invalid_header");
  return seq;
}

export interface ForkRequest {
  /** The source's stream name, resolved by the router from `Stream-Forked-From`. */
  source: string;
  /** The requested wire offset, or null for the source's current tail. */
  offset: string | null;
  subOffset: number;
}

export function parseFork(headers: Headers, sourceName: string | null): ForkRequest | null {
  const sub = header(headers, H.forkSubOffset);
  const offset = header(headers, H.forkOffset);
  if (sourceName === null) {
    if (sub !== null || offset !== null) {
      throw invalidInput(
        `${H.forkOffset} and ${H.forkSubOffset} need ${H.forkedFrom}`,
        undefined,
        "invalid_header",
      );
    }
    return null;
  }
  const subOffset = sub === null ? 0 : decimal(H.forkSubOffset, sub);
  if (subOffset > 0 && offset === null) {
    throw invalidInput(
      `${H.forkSubOffset} above 0 needs an explicit ${H.forkOffset}`,
      undefined,
      "invalid_header",
    );
  }
  return { source: sourceName, offset, subOffset };
}

/** `offset` may appear at most once and must not be empty. */
export function offsetParam(url: URL): string | null {
  const all = url.searchParams.getAll("offset");
  if (all.length > 1)
    throw invalidInput("offset must be given at most once", undefined, "invalid_offset");
  const raw = all[0] ?? null;
  if (raw === "") throw invalidInput("offset must not be empty", undefined, "invalid_offset");
  return raw;
}

export type LiveMode = "long-poll" | "sse" | null;

export function liveParam(url: URL): LiveMode {
  const live = url.searchParams.get("live");
  if (live === null || live === "" || live === "false") return null;
  if (live === "long-poll" || live === "sse") return live;
  throw invalidInput(`live must be long-poll or sse, got ${JSON.stringify(live.slice(0, 40))}`);
}
