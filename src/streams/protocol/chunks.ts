/**
 * Reads of one stream come in chunks: the messages after a position, cut at a size, with the
 * state needed to answer (next offset, up to date, closed). Small chunks are shared between
 * readers: after a commit, every live reader at the same position asks for the same range,
 * and the log is immutable below its tail, so one read (and one encoding per format) serves
 * them all. The cache is owned by the hosting Durable Object and passed to the protocol
 * handler; it keeps only a few small chunks, keyed by incarnation, range and closed state.
 */
import type { PageMessage, StreamLog, StreamMeta } from "../log";

export interface Chunk {
  messages: PageMessage[];
  next: number;
  upToDate: boolean;
  closedAtEnd: boolean;
}

/** Catch-up responses are cut at about this size; the rest follows at Stream-Next-Offset. */
const READ_CHUNK_BYTES = 4 * 1024 * 1024;
const READ_CHUNK_MESSAGES = 50_000;
const SHARED_CHUNK_MESSAGES = 256;
const SHARED_CHUNKS = 8;

export class ChunkCache {
  readonly #chunks = new Map<string, Chunk>();
  /** Encodings of shared chunks, per format (a fixed set of names: the protocol's and the read views'). */
  readonly #encoded = new Map<string, WeakMap<Chunk, string>>();

  /** The chunk after `after` as of `meta` (shared when small). */
  read(log: StreamLog, meta: StreamMeta, after: number): Chunk {
    const key = `${meta.id}:${after}:${meta.tail}:${meta.closed_at !== null}`;
    const hit = this.#chunks.get(key);
    if (hit) return hit;
    const messages = log.readPage(after, meta.tail, READ_CHUNK_MESSAGES, READ_CHUNK_BYTES);
    const next = messages.at(-1)?.offset ?? after;
    const upToDate = next === meta.tail;
    const chunk = { messages, next, upToDate, closedAtEnd: upToDate && meta.closed_at !== null };
    if (messages.length <= SHARED_CHUNK_MESSAGES) {
      this.#chunks.set(key, chunk);
      if (this.#chunks.size > SHARED_CHUNKS) this.#chunks.delete(this.#chunks.keys().next().value!);
    }
    return chunk;
  }

  /** A chunk's encoding in `format`, computed once per chunk. */
  encoded(format: string, chunk: Chunk, encode: (chunk: Chunk) => string): string {
    let cache = this.#encoded.get(format);
    if (!cache) {
      cache = new WeakMap();
      this.#encoded.set(format, cache);
    }
    let data = cache.get(chunk);
    if (data === undefined) {
      data = encode(chunk);
      cache.set(chunk, data);
    }
    return data;
  }
}
