/**
 * Large content (long user messages, big tool results, long replies) is stored in chunks at
 * the stream level. Why chunks on the stream rather than a blob store: the stream is already
 * the durable, replicated, ordered record of the session; chunk appends are idempotent like
 * every other append (keyed from the source event), they need no second storage system or
 * garbage collection, readers of the stream (clients, other processors) can reassemble the
 * content themselves, and every stored message stays far below the ~2 MB SQLite row limit.
 *
 * Shape: the content is split into `content/chunk-added { contentId, index, text }` events of
 * at most CHUNK_BYTES stored bytes each (measured as the JSON-escaped UTF-8 text, so a chunk
 * fits a stored message whatever its characters), appended in bounded batches BEFORE the event
 * that uses them. That event then carries a `ContentRef` (`{ contentId, bytes, chunks, sha256,
 * offsets }`) in a sibling field (`contentRef`, `textRef`, `resultRef`) and an empty inline
 * value. `offsets` are the chunk events' stream offsets (known from their appends, stable
 * across idempotent retries), so a reader fetches exactly those events with bounded reads.
 * Content at or below INLINE_CONTENT_BYTES stays inline.
 *
 * Readers validate what they read back: each chunk's type, contentId and index; the total
 * byte count; and the SHA-256 of the whole content when it is read in full.
 */
import { z } from "zod";

/** Content up to this many UTF-8 bytes is carried inline in its event. */
export const INLINE_CONTENT_BYTES = 64 * 1024;
/** Upper bound of one chunk's text, in JSON-escaped UTF-8 bytes (what is stored). */
export const CHUNK_BYTES = 512 * 1024;
/** Largest user message (UTF-8 bytes of `content`) the session API accepts. */
export const MAX_INPUT_CONTENT_BYTES = 8 * 1024 * 1024;
/** Largest tool result (UTF-8 bytes of its JSON) that is stored; larger ones become an error result. */
export const MAX_TOOL_RESULT_BYTES = 16 * 1024 * 1024;
/** Bounds of one append of chunk events (count and stored bytes). */
export const CHUNK_APPEND_MAX_EVENTS = 8;
export const CHUNK_APPEND_MAX_BYTES = 4 * 1024 * 1024;

export const CHUNK_EVENT = "content/chunk-added" as const;

export const contentChunkSchema = z.object({
  contentId: z.string().min(1).max(200),
  index: z.number().int().nonnegative(),
  text: z.string().max(CHUNK_BYTES),
});
export type ContentChunk = z.infer<typeof contentChunkSchema>;

export const contentRefSchema = z
  .object({
    contentId: z.string().min(1).max(200),
    /** UTF-8 bytes of the whole content. */
    bytes: z.number().int().nonnegative(),
    chunks: z.number().int().positive(),
    /** Hex SHA-256 of the UTF-8 content. */
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    /** Stream offset of each chunk event, by index. */
    offsets: z.array(z.number().int().positive()),
  })
  .refine((ref) => ref.offsets.length === ref.chunks, {
    message: "offsets must name one stream offset per chunk",
    path: ["offsets"],
  });
export type ContentRef = z.infer<typeof contentRefSchema>;

const encoder = new TextEncoder();

export function utf8Bytes(text: string): number {
  return encoder.encode(text).byteLength;
}

export function needsChunks(text: string): boolean {
  // Cheap bound first: a UTF-16 string never has more UTF-8 bytes than 3x its length.
  return text.length * 3 > INLINE_CONTENT_BYTES && utf8Bytes(text) > INLINE_CONTENT_BYTES;
}

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Stored (JSON-escaped UTF-8) bytes of the code unit at `i`, and how many units it spans. */
function unitCost(text: string, i: number): [bytes: number, units: number] {
  const c = text.charCodeAt(i);
  if (c < 0x20) return [c === 8 || c === 9 || c === 10 || c === 12 || c === 13 ? 2 : 6, 1];
  if (c === 0x22 || c === 0x5c) return [2, 1];
  if (c < 0x80) return [1, 1];
  if (c < 0x800) return [2, 1];
  if (c >= 0xd800 && c <= 0xdbff) {
    const next = text.charCodeAt(i + 1);
    if (next >= 0xdc00 && next <= 0xdfff) return [4, 2];
    return [6, 1]; // a lone surrogate is escaped as \uXXXX
  }
  if (c >= 0xdc00 && c <= 0xdfff) return [6, 1];
  return [3, 1];
}

/**
 * The end (exclusive) of the longest piece of `text` from `start` with at most `maxBytes`
 * stored bytes, never inside a surrogate pair. With `atLeastOne` (the default) it takes one
 * character even if that alone exceeds `maxBytes` (only possible when maxBytes < 6).
 */
export function pieceEnd(
  text: string,
  start: number,
  maxBytes: number,
  atLeastOne = true,
): { end: number; bytes: number } {
  let bytes = 0;
  let i = start;
  while (i < text.length) {
    const [cost, units] = unitCost(text, i);
    if (bytes + cost > maxBytes && (i > start || !atLeastOne)) break;
    bytes += cost;
    i += units;
  }
  return { end: i, bytes };
}

/** Splits text into pieces of at most `maxBytes` stored bytes, never inside a surrogate pair. */
export function splitText(text: string, maxBytes: number = CHUNK_BYTES): string[] {
  if (maxBytes < 6) throw new Error("chunk size must be at least 6 bytes");
  if (text === "") return [""];
  const pieces: string[] = [];
  for (let start = 0; start < text.length; ) {
    const { end } = pieceEnd(text, start, maxBytes);
    pieces.push(text.slice(start, end));
    start = end;
  }
  return pieces;
}

/** Stored (JSON-escaped UTF-8) bytes of a string's characters. */
export function storedBytes(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; ) {
    const [cost, units] = unitCost(text, i);
    bytes += cost;
    i += units;
  }
  return bytes;
}

/** The chunk events of one piece of content, ready to append (payloads of `content/chunk-added`). */
export interface PreparedContent {
  contentId: string;
  bytes: number;
  sha256: string;
  chunks: ContentChunk[];
}

export async function prepareContent(contentId: string, text: string): Promise<PreparedContent> {
  return {
    contentId,
    bytes: utf8Bytes(text),
    sha256: await sha256Hex(text),
    chunks: splitText(text).map((piece, index) => ({ contentId, index, text: piece })),
  };
}

/**
 * Groups chunk payloads into appends bounded by count and stored bytes, so no append of
 * chunks exceeds CHUNK_APPEND_MAX_EVENTS events or CHUNK_APPEND_MAX_BYTES.
 */
export function chunkBatches(chunks: ContentChunk[]): ContentChunk[][] {
  const batches: ContentChunk[][] = [];
  let current: ContentChunk[] = [];
  let bytes = 0;
  for (const chunk of chunks) {
    const size = chunk.text.length * 3; // an upper bound of its UTF-8 size
    if (
      current.length > 0 &&
      (current.length >= CHUNK_APPEND_MAX_EVENTS || bytes + size > CHUNK_APPEND_MAX_BYTES)
    ) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(chunk);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/**
 * Stores content as chunk events through `appendChunks` (one call per bounded batch, in
 * order; it must append with idempotency keys derived from the source and the chunk index and
 * return the committed offsets) and returns the reference to put in the using event.
 */
export async function storeContent(
  contentId: string,
  text: string,
  appendChunks: (chunks: ContentChunk[]) => Promise<number[]>,
): Promise<ContentRef> {
  const prepared = await prepareContent(contentId, text);
  const offsets: number[] = [];
  for (const batch of chunkBatches(prepared.chunks)) {
    const committed = await appendChunks(batch);
    if (committed.length !== batch.length)
      throw new Error(`chunk append returned ${committed.length} offsets for ${batch.length}`);
    offsets.push(...committed);
  }
  return {
    contentId,
    bytes: prepared.bytes,
    chunks: prepared.chunks.length,
    sha256: prepared.sha256,
    offsets,
  };
}

/** A stored event as a reader sees it (enough of StreamEvent to validate a chunk). */
export interface ChunkEventLike {
  offset: number;
  type: string | null;
  payload: unknown;
}

export class ContentError extends Error {
  override name = "ContentError";
}

function chunkAt(ref: ContentRef, index: number, event: ChunkEventLike | undefined): string {
  const where = `chunk ${index} of content ${ref.contentId}`;
  if (!event || event.offset !== ref.offsets[index])
    throw new ContentError(`${where} not found at offset ${ref.offsets[index]}`);
  if (event.type !== CHUNK_EVENT) throw new ContentError(`${where} is a ${event.type} event`);
  const parsed = contentChunkSchema.safeParse(event.payload);
  if (!parsed.success) throw new ContentError(`${where} is malformed: ${parsed.error.message}`);
  if (parsed.data.contentId !== ref.contentId || parsed.data.index !== index)
    throw new ContentError(`${where} holds chunk ${parsed.data.index} of ${parsed.data.contentId}`);
  return parsed.data.text;
}

/**
 * Reads the content a reference names, chunk by chunk, through `readAt` (which returns the
 * event stored at an offset; one bounded read each). With `maxBytes` it stops once that many
 * UTF-8 bytes are read and returns the prefix (`complete: false`); read in full, it checks
 * the byte count and SHA-256 against the reference.
 */
export async function readContent(
  ref: ContentRef,
  readAt: (offset: number) => Promise<ChunkEventLike | undefined>,
  options: { maxBytes?: number } = {},
): Promise<{ text: string; complete: boolean }> {
  const limit = options.maxBytes ?? Number.POSITIVE_INFINITY;
  const pieces: string[] = [];
  let bytes = 0;
  for (let index = 0; index < ref.chunks; index++) {
    if (bytes >= limit) return { text: truncateUtf8(pieces.join(""), limit), complete: false };
    const offset = ref.offsets[index]!;
    const text = chunkAt(ref, index, await readAt(offset));
    pieces.push(text);
    bytes += utf8Bytes(text);
  }
  const text = pieces.join("");
  if (bytes > limit) return { text: truncateUtf8(text, limit), complete: false };
  await verify(ref, text, bytes);
  return { text, complete: true };
}

/** Reassembles content from chunk events already at hand (e.g. a read of the stream). */
export async function assembleContent(
  ref: ContentRef,
  events: Iterable<ChunkEventLike>,
): Promise<string> {
  const byOffset = new Map<number, ChunkEventLike>();
  for (const event of events) byOffset.set(event.offset, event);
  const pieces = ref.offsets.map((offset, index) => chunkAt(ref, index, byOffset.get(offset)));
  const text = pieces.join("");
  await verify(ref, text, utf8Bytes(text));
  return text;
}

async function verify(ref: ContentRef, text: string, bytes: number): Promise<void> {
  if (bytes !== ref.bytes)
    throw new ContentError(`content ${ref.contentId} has ${bytes} bytes, expected ${ref.bytes}`);
  if ((await sha256Hex(text)) !== ref.sha256)
    throw new ContentError(`content ${ref.contentId} does not match its SHA-256`);
}

/** The longest prefix of `text` with at most `maxBytes` UTF-8 bytes (never half a character). */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (text.length * 3 <= maxBytes) return text;
  let bytes = 0;
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    const pair = c >= 0xd800 && c <= 0xdbff && i + 1 < text.length;
    const next = pair ? text.charCodeAt(i + 1) : 0;
    const isPair = pair && next >= 0xdc00 && next <= 0xdfff;
    const cost = c < 0x80 ? 1 : c < 0x800 ? 2 : isPair ? 4 : 3;
    if (bytes + cost > maxBytes) break;
    bytes += cost;
    i += isPair ? 2 : 1;
  }
  return text.slice(0, i);
}

/** The marker a prompt carries where content was cut to fit the model's budget. */
export function truncationNote(shownBytes: number, totalBytes: number): string {
  return `[truncated: ${shownBytes} of ${totalBytes} bytes]`;
}

/** Cuts text to `maxBytes` and says so, for a prompt: the model is told what it does not see. */
export function truncateForPrompt(text: string, totalBytes: number, maxBytes: number): string {
  const shown = truncateUtf8(text, maxBytes);
  const shownBytes = utf8Bytes(shown);
  if (shownBytes >= totalBytes) return shown;
  return `${shown}\n${truncationNote(shownBytes, totalBytes)}`;
}
