/** Chunked content (src/sessions/content.ts): splitting, bounded batches, read-back, truncation. */
import { describe, expect, it } from "vitest";
import {
  assembleContent,
  CHUNK_APPEND_MAX_BYTES,
  CHUNK_APPEND_MAX_EVENTS,
  CHUNK_BYTES,
  CHUNK_EVENT,
  type ChunkEventLike,
  type ContentChunk,
  ContentError,
  chunkBatches,
  contentRefSchema,
  needsChunks,
  readContent,
  splitText,
  storeContent,
  storedBytes,
  truncateForPrompt,
  truncateUtf8,
  utf8Bytes,
} from "../../src/sessions/content";
import { sessionEvents } from "../../src/sessions/events";

/** Stores content in an in-memory "stream" and returns the ref and the stored events. */
async function store(text: string, id = "c1") {
  const log: ChunkEventLike[] = [{ offset: 1, type: "other/event", payload: {} }];
  const appends: ContentChunk[][] = [];
  const ref = await storeContent(id, text, async (chunks) => {
    appends.push(chunks);
    return chunks.map((chunk) => {
      // Stored as JSON, like the stream does, to check the escaped size bound.
      const body = JSON.stringify({ type: CHUNK_EVENT, payload: chunk });
      expect(new TextEncoder().encode(body).byteLength).toBeLessThan(CHUNK_BYTES + 200);
      const event = {
        offset: log.length + 1,
        type: CHUNK_EVENT,
        payload: JSON.parse(body).payload,
      };
      log.push(event);
      return event.offset;
    });
  });
  const at = (offset: number) => Promise.resolve(log.find((e) => e.offset === offset));
  return { ref, log, appends, at };
}

describe("splitting", () => {
  it("never exceeds the stored-byte bound and joins back exactly, whatever the characters", () => {
    const samples = [
      "a".repeat(CHUNK_BYTES * 2 + 17),
      '"\\'.repeat(CHUNK_BYTES),
      "\u0001\n".repeat(CHUNK_BYTES / 2),
      "é😀中".repeat(CHUNK_BYTES / 4),
      "\ud800x".repeat(1000), // lone surrogates are escaped as \uXXXX
    ];
    for (const text of samples) {
      const pieces = splitText(text);
      expect(pieces.join("")).toBe(text);
      for (const piece of pieces) {
        expect(new TextEncoder().encode(JSON.stringify(piece)).byteLength - 2).toBe(
          storedBytes(piece),
        );
        expect(storedBytes(piece)).toBeLessThanOrEqual(CHUNK_BYTES);
        // no piece starts with the low half of a surrogate pair
        const first = piece.charCodeAt(0);
        if (first >= 0xdc00 && first <= 0xdfff) expect(text).toContain("\ud800x");
      }
    }
    expect(splitText("😀😀", 6)).toEqual(["😀", "😀"]);
    expect(splitText("")).toEqual([""]);
  });

  it("keeps content at or below 64 KiB inline", () => {
    expect(needsChunks("x".repeat(64 * 1024))).toBe(false);
    expect(needsChunks("x".repeat(64 * 1024 + 1))).toBe(true);
    expect(needsChunks("é".repeat(40 * 1024))).toBe(true);
  });

  it("groups chunk appends by count and bytes", () => {
    const chunks = Array.from({ length: 30 }, (_, index) => ({
      contentId: "c",
      index,
      text: "x".repeat(300 * 1024),
    }));
    const batches = chunkBatches(chunks);
    expect(batches.flat()).toEqual(chunks);
    for (const batch of batches) {
      expect(batch.length).toBeLessThanOrEqual(CHUNK_APPEND_MAX_EVENTS);
      expect(batch.reduce((n, c) => n + utf8Bytes(c.text), 0)).toBeLessThanOrEqual(
        CHUNK_APPEND_MAX_BYTES,
      );
    }
    expect(batches.length).toBeGreaterThan(1);
  });
});

describe("storing and reading back", () => {
  it("stores 8 MiB in bounded appends and reads it back verified", async () => {
    const text = "0123456789abcdef".repeat(512 * 1024);
    const { ref, appends, at, log } = await store(text);
    expect(contentRefSchema.parse(ref)).toEqual(ref);
    expect(ref.bytes).toBe(8 * 1024 * 1024);
    expect(ref.chunks).toBe(16);
    expect(appends.length).toBeGreaterThan(1);
    for (const batch of appends) expect(batch.length).toBeLessThanOrEqual(CHUNK_APPEND_MAX_EVENTS);
    expect(await readContent(ref, at)).toEqual({ text, complete: true });
    expect(await assembleContent(ref, log)).toBe(text);
    // every chunk payload is a valid event of the catalog
    for (const event of log.slice(1))
      expect(sessionEvents[CHUNK_EVENT].safeParse(event.payload).success).toBe(true);
  });

  it("reads only what a budget needs and says it is incomplete", async () => {
    const text = "y".repeat(3 * CHUNK_BYTES);
    const { ref, at } = await store(text);
    const reads: number[] = [];
    const result = await readContent(
      ref,
      (offset) => {
        reads.push(offset);
        return at(offset);
      },
      { maxBytes: 1000 },
    );
    expect(result).toEqual({ text: "y".repeat(1000), complete: false });
    expect(reads).toHaveLength(1);
  });

  it("refuses chunks that do not match the reference", async () => {
    const text = "z".repeat(CHUNK_BYTES + 10);
    const { ref, log, at } = await store(text);
    const moved = { ...ref, offsets: [ref.offsets[0]! + 1, ref.offsets[1]! + 1] };
    await expect(readContent(moved, at)).rejects.toBeInstanceOf(ContentError);
    const tampered = log.map((e) =>
      e.offset === ref.offsets[1]
        ? { ...e, payload: { ...(e.payload as ContentChunk), text: "q".repeat(10) } }
        : e,
    );
    await expect(assembleContent(ref, tampered)).rejects.toThrow(/SHA-256/);
    const longer = log.map((e) =>
      e.offset === ref.offsets[1]
        ? { ...e, payload: { ...(e.payload as ContentChunk), text: "z".repeat(11) } }
        : e,
    );
    await expect(assembleContent(ref, longer)).rejects.toThrow(/bytes, expected/);
    const wrongHash = { ...ref, sha256: "0".repeat(64) };
    await expect(readContent(wrongHash, at)).rejects.toThrow(/SHA-256/);
    await expect(readContent(ref, () => Promise.resolve(undefined))).rejects.toThrow(/not found/);
  });

  it("rejects a reference whose offsets do not match its chunk count", () => {
    expect(
      contentRefSchema.safeParse({
        contentId: "c",
        bytes: 1,
        chunks: 2,
        sha256: "a".repeat(64),
        offsets: [3],
      }).success,
    ).toBe(false);
  });
});

describe("truncation for prompts", () => {
  it("cuts on character boundaries and states what was left out", () => {
    expect(truncateUtf8("aé😀", 2)).toBe("a");
    expect(truncateUtf8("aé😀", 3)).toBe("aé");
    expect(truncateUtf8("aé😀", 6)).toBe("aé");
    expect(truncateUtf8("aé😀", 7)).toBe("aé😀");
    expect(truncateForPrompt("abcdef", 6, 4)).toBe("abcd\n[truncated: 4 of 6 bytes]");
    expect(truncateForPrompt("abc", 3, 4)).toBe("abc");
  });
});

describe("event schemas", () => {
  it("input-added holds inline content or a reference, not both or neither", () => {
    const schema = sessionEvents["session/input-added"];
    const ref = { contentId: "m", bytes: 1, chunks: 1, sha256: "a".repeat(64), offsets: [2] };
    expect(schema.safeParse({ messageId: "m", content: "hi" }).success).toBe(true);
    expect(schema.safeParse({ messageId: "m", content: "", contentRef: ref }).success).toBe(true);
    expect(schema.safeParse({ messageId: "m", content: "" }).success).toBe(false);
    expect(schema.safeParse({ messageId: "m", content: "hi", contentRef: ref }).success).toBe(
      false,
    );
    // events stored before chunking (inline content up to 100,000 characters) still parse
    expect(schema.safeParse({ messageId: "m", content: "x".repeat(100_000) }).success).toBe(true);
  });
});
