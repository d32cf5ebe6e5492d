/**
 * The Stream Durable Object's typed RPC door: dense offsets under concurrency, idempotency
 * keys, optimistic concurrency, closing, input validation, size limits, and durability
 * across evictions and aborts.
 */
import { abortAllDurableObjects } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { MAX_MESSAGE_BYTES } from "../../src/streams/messages";
import { evictDurableObject } from "../support/rpc";
import { nameOf, rpcError, stubFor, uniquePath } from "../support/streams";

/** Creates a JSON stream over RPC and returns its stub. */
async function newStream(label: string) {
  const path = uniquePath(label);
  const stub = stubFor(path);
  const { created, head } = await stub.create(nameOf(path), path);
  expect(created).toBe(true);
  expect(head).toMatchObject({ eventCount: 0, nextOffset: 1, closed: false });
  return { path, stub };
}

const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Overhead of `{"type":"a/b","payload":"…"}` around a string payload. */
const STRING_EVENT_OVERHEAD = JSON.stringify({ type: "a/b", payload: "" }).length;

describe("dense offsets under concurrency", () => {
  it("20 concurrent appendBatch calls of 5 events get offsets 1..100 with no gap or duplicate", async () => {
    const { path, stub } = await newStream("dense");
    const writers = range(0, 19);
    const results = await Promise.all(
      writers.map((w) =>
        // A fresh stub per writer, as separate callers would have.
        stubFor(path).appendBatch(
          range(0, 4).map((i) => ({ type: "test/appended", payload: { w, i } })),
        ),
      ),
    );
    const offsets = results.flat().map((e) => e.offset);
    expect([...offsets].sort((a, b) => a - b)).toEqual(range(1, 100));
    // Each batch is atomic: its five events are contiguous and in order.
    for (const [w, batch] of results.entries()) {
      expect(batch.map((e) => e.payload)).toEqual(range(0, 4).map((i) => ({ w, i })));
      const first = batch[0]!.offset;
      expect(batch.map((e) => e.offset)).toEqual(range(first, first + 4));
    }
    const { events, upToDate, head } = await stub.read({ after: 0, limit: 1_000 });
    expect(upToDate).toBe(true);
    expect(events.map((e) => e.offset)).toEqual(range(1, 100));
    expect(head).toMatchObject({ eventCount: 100, lastOffset: 100, nextOffset: 101 });
    const byOffset = new Map(results.flat().map((e) => [e.offset, e.payload]));
    for (const event of events) expect(event.payload).toEqual(byOffset.get(event.offset));
  });

  it("concurrent single appends through append() are dense too", async () => {
    const { path, stub } = await newStream("dense-single");
    const results = await Promise.all(
      range(1, 50).map((i) => stubFor(path).append({ type: "test/one", payload: i })),
    );
    expect(results.map((e) => e.offset).sort((a, b) => a - b)).toEqual(range(1, 50));
    expect((await stub.head()).eventCount).toBe(50);
  });
});

describe("idempotency keys", () => {
  it("the same key appended many times concurrently stores one event and every caller gets its offset", async () => {
    const { path, stub } = await newStream("idem-concurrent");
    await stub.append({ type: "test/before", payload: 0 });
    const results = await Promise.all(
      range(1, 25).map((i) =>
        stubFor(path).append({ type: "test/once", payload: i, idempotencyKey: "only-once" }),
      ),
    );
    const offsets = new Set(results.map((e) => e.offset));
    expect(offsets.size).toBe(1);
    const [offset] = [...offsets];
    expect(offset).toBe(2);
    // Every caller sees the original event, whichever payload its own retry carried.
    const original = results[0]!.payload;
    for (const event of results) {
      expect(event).toMatchObject({ type: "test/once", idempotencyKey: "only-once" });
      expect(event.payload).toEqual(original);
    }
    expect((await stub.head()).eventCount).toBe(2);
    const { events } = await stub.read({});
    expect(events.map((e) => e.offset)).toEqual([1, 2]);
  });

  it("concurrent batches sharing keys store each key once", async () => {
    const { path, stub } = await newStream("idem-batches");
    const results = await Promise.all(
      range(1, 10).map((i) =>
        stubFor(path).appendBatch(
          i % 2 === 0
            ? [
                { type: "test/k", payload: "a", idempotencyKey: "ka" },
                { type: "test/k", payload: "b", idempotencyKey: "kb" },
              ]
            : [
                { type: "test/k", payload: "b", idempotencyKey: "kb" },
                { type: "test/k", payload: "a", idempotencyKey: "ka" },
              ],
        ),
      ),
    );
    const offsetOf = new Map<string, Set<number>>();
    for (const event of results.flat()) {
      const key = event.idempotencyKey!;
      offsetOf.set(key, (offsetOf.get(key) ?? new Set()).add(event.offset));
    }
    expect(offsetOf.get("ka")?.size).toBe(1);
    expect(offsetOf.get("kb")?.size).toBe(1);
    expect((await stub.head()).eventCount).toBe(2);
  });

  it("a key repeated within one batch is stored once and both positions get the original", async () => {
    const { stub } = await newStream("idem-in-batch");
    const events = await stub.appendBatch([
      { type: "test/a", payload: 1, idempotencyKey: "dup" },
      { type: "test/b", payload: 2 },
      { type: "test/a", payload: 3, idempotencyKey: "dup" },
      { type: "test/c", payload: 4 },
    ]);
    expect(events.map((e) => e.offset)).toEqual([1, 2, 1, 3]);
    expect(events[2]).toEqual(events[0]);
    expect(events[2]!.payload).toBe(1);
    const { events: stored, head } = await stub.read({});
    expect(head.eventCount).toBe(3);
    expect(stored.map((e) => [e.offset, e.type, e.payload])).toEqual([
      [1, "test/a", 1],
      [2, "test/b", 2],
      [3, "test/c", 4],
    ]);
  });

  it("a key repeated across batches returns the original event and stores nothing new", async () => {
    const { stub } = await newStream("idem-across");
    const [first] = await stub.appendBatch([
      { type: "test/x", payload: { v: 1 }, metadata: { m: 1 }, idempotencyKey: "k1" },
    ]);
    await stub.append({ type: "test/y", payload: null });
    const second = await stub.appendBatch([
      { type: "test/z", payload: "new" },
      { type: "test/x", payload: { v: 2 }, idempotencyKey: "k1" },
    ]);
    expect(second[0]!.offset).toBe(3);
    expect(second[1]).toEqual(first);
    expect(second[1]).toMatchObject({ offset: 1, payload: { v: 1 }, metadata: { m: 1 } });
    expect((await stub.head()).eventCount).toBe(3);
    // A batch made only of retries stores nothing and still answers.
    const retry = await stub.appendBatch([
      { type: "test/x", payload: 0, idempotencyKey: "k1" },
      { type: "test/x", payload: 0, idempotencyKey: "k1" },
    ]);
    expect(retry.map((e) => e.offset)).toEqual([1, 1]);
    expect((await stub.head()).eventCount).toBe(3);
  });
});

describe("large batches (one INSERT per 24 rows)", () => {
  it("a 60-event batch is stored densely in order and read back whole", async () => {
    const { stub } = await newStream("batch-60");
    await stub.append({ type: "test/first", payload: 0 });
    const events = await stub.appendBatch(
      range(1, 60).map((i) => ({ type: "test/n", payload: i, idempotencyKey: `n-${i}` })),
    );
    expect(events.map((e) => e.offset)).toEqual(range(2, 61));
    const { events: stored, head } = await stub.read({ after: 0, limit: 1_000 });
    expect(head.eventCount).toBe(61);
    expect(stored.slice(1).map((e) => [e.offset, e.payload, e.idempotencyKey])).toEqual(
      range(1, 60).map((i) => [i + 1, i, `n-${i}`]),
    );
  });

  it("stored keys in a later statement of a batch undo its earlier rows: only the new ones are stored, densely", async () => {
    const { stub } = await newStream("batch-repeats");
    const [stored] = await stub.appendBatch([
      { type: "test/old", payload: "original", idempotencyKey: "old" },
    ]);
    // Rows 1..24 go in with the first statement; "old" (row 40) and the repeat of "k-3"
    // (row 50) are met by the second and third, after rows were inserted.
    const batch = range(1, 60).map((i) =>
      i === 40
        ? { type: "test/old", payload: "retry", idempotencyKey: "old" }
        : i === 50
          ? { type: "test/n", payload: "again", idempotencyKey: "k-3" }
          : { type: "test/n", payload: i, idempotencyKey: `k-${i}` },
    );
    const events = await stub.appendBatch(batch);
    const fresh = range(1, 60).filter((i) => i !== 40 && i !== 50);
    // New events take offsets 2..59 in input order; the repeats answer their originals.
    const byInput = new Map(fresh.map((i, n) => [i, n + 2]));
    expect(events.map((e) => e.offset)).toEqual(
      range(1, 60).map((i) => (i === 40 ? 1 : i === 50 ? byInput.get(3)! : byInput.get(i)!)),
    );
    expect(events[39]).toEqual(stored);
    expect(events[49]).toEqual(events[2]);
    expect(events[49]!.payload).toBe(3);
    const { events: all, head } = await stub.read({ after: 0, limit: 1_000 });
    expect(head.eventCount).toBe(59);
    expect(all.map((e) => e.offset)).toEqual(range(1, 59));
    expect(all.slice(1).map((e) => e.payload)).toEqual(fresh);
    // And the next append continues densely after them.
    expect((await stub.append({ type: "test/after", payload: null })).offset).toBe(60);
  });

  it("with expectedOffset, a batch of only stored keys is a retry; one new event among them needs the right offset", async () => {
    const { stub } = await newStream("batch-expected");
    await stub.appendBatch(
      range(1, 30).map((i) => ({ type: "test/n", payload: i, idempotencyKey: `e-${i}` })),
    );
    const retry = await stub.appendBatch(
      range(1, 30).map((i) => ({ type: "test/n", payload: i, idempotencyKey: `e-${i}` })),
      { expectedOffset: 1 },
    );
    expect(retry.map((e) => e.offset)).toEqual(range(1, 30));
    const mixed = [
      ...range(1, 30).map((i) => ({ type: "test/n", payload: i, idempotencyKey: `e-${i}` })),
      { type: "test/n", payload: 31, idempotencyKey: "e-31" },
    ];
    const stale = await rpcError(stub.appendBatch(mixed, { expectedOffset: 1 }));
    expect(stale).toMatchObject({ code: "offset_conflict", details: { nextOffset: 31 } });
    const ok = await stub.appendBatch(mixed, { expectedOffset: 31 });
    expect(ok.map((e) => e.offset)).toEqual(range(1, 31));
  });
});

describe("getByIdempotencyKey", () => {
  it("finds the event stored under a key and answers null for an unknown key", async () => {
    const { stub } = await newStream("by-key");
    await stub.append({ type: "test/a", payload: 1 });
    const stored = await stub.append({
      type: "test/b",
      payload: { deep: [1, 2] },
      metadata: { source: "t" },
      idempotencyKey: "find-me",
    });
    const found = await stub.getByIdempotencyKey("find-me");
    expect(found).toEqual(stored);
    expect(found).toMatchObject({ offset: 2, type: "test/b", idempotencyKey: "find-me" });
    expect(await stub.getByIdempotencyKey("nope")).toBeNull();
    const error = await rpcError(stub.getByIdempotencyKey(""));
    expect(error).toMatchObject({ code: "validation_failed" });
  });

  it("answers 404 on a stream that does not exist", async () => {
    const error = await rpcError(stubFor(uniquePath("by-key-missing")).getByIdempotencyKey("k"));
    expect(error).toMatchObject({ code: "not_found" });
  });
});

describe("expectedOffset", () => {
  it("a mismatch is an offset_conflict naming the next offset; a match succeeds", async () => {
    const { stub } = await newStream("expected");
    const early = await rpcError(
      stub.append({ type: "test/a", payload: 1 }, { expectedOffset: 2 }),
    );
    expect(early).toMatchObject({ code: "offset_conflict" });
    expect(early.message).toContain("next offset 1");
    expect(early.details).toMatchObject({ expectedOffset: 2, nextOffset: 1 });
    expect((await stub.head()).eventCount).toBe(0);

    const ok = await stub.appendBatch(
      [
        { type: "test/a", payload: 1 },
        { type: "test/a", payload: 2 },
      ],
      { expectedOffset: 1 },
    );
    expect(ok.map((e) => e.offset)).toEqual([1, 2]);

    const stale = await rpcError(
      stub.append({ type: "test/a", payload: 3 }, { expectedOffset: 1 }),
    );
    expect(stale).toMatchObject({ code: "offset_conflict" });
    expect(stale.message).toContain("next offset 3");
    expect(stale.details).toMatchObject({ nextOffset: 3 });
    expect((await stub.head()).eventCount).toBe(2);

    expect((await stub.append({ type: "test/a", payload: 3 }, { expectedOffset: 3 })).offset).toBe(
      3,
    );
  });

  it("of concurrent writers expecting the same offset exactly one wins", async () => {
    const { path, stub } = await newStream("expected-race");
    const settled = await Promise.allSettled(
      range(1, 10).map((i) =>
        stubFor(path).append({ type: "test/race", payload: i }, { expectedOffset: 1 }),
      ),
    );
    const won = settled.filter((s) => s.status === "fulfilled");
    const lost = settled.filter((s) => s.status === "rejected");
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(9);
    for (const loss of lost) {
      const error = await rpcError(Promise.reject((loss as PromiseRejectedResult).reason));
      expect(error).toMatchObject({ code: "offset_conflict" });
      expect(error.message).toContain("next offset 2");
    }
    expect((await stub.head()).eventCount).toBe(1);
  });

  it("a retry of an already stored key is answered even when its expectedOffset is stale", async () => {
    const { stub } = await newStream("expected-retry");
    const first = await stub.append(
      { type: "test/a", payload: 1, idempotencyKey: "r" },
      { expectedOffset: 1 },
    );
    await stub.append({ type: "test/b", payload: 2 });
    const retry = await stub.append(
      { type: "test/a", payload: 1, idempotencyKey: "r" },
      { expectedOffset: 1 },
    );
    expect(retry).toEqual(first);
    expect((await stub.head()).eventCount).toBe(2);
  });
});

describe("close", () => {
  it("is idempotent and the first terminal writer wins", async () => {
    const { stub } = await newStream("close");
    await stub.append({ type: "test/a", payload: 1 });
    const failed = await stub.close({ status: "failed", reason: "x" });
    expect(failed).toMatchObject({
      closed: true,
      closeStatus: "failed",
      closeReason: "x",
      eventCount: 1,
    });
    const again = await stub.close({ status: "ended" });
    expect(again).toMatchObject({ closed: true, closeStatus: "failed", closeReason: "x" });
    const third = await stub.close();
    expect(third).toMatchObject({ closeStatus: "failed", closeReason: "x", eventCount: 1 });
    expect(await stub.head()).toMatchObject({
      closed: true,
      closeStatus: "failed",
      closeReason: "x",
    });
  });

  it("concurrent closes leave exactly one terminal status", async () => {
    const { path, stub } = await newStream("close-race");
    const heads = await Promise.all([
      stubFor(path).close({ status: "failed", reason: "a" }),
      stubFor(path).close({ status: "ended", reason: "b" }),
      stubFor(path).close({ status: "failed", reason: "c" }),
    ]);
    const final = await stub.head();
    for (const head of heads) {
      expect(head.closeStatus).toBe(final.closeStatus);
      expect(head.closeReason).toBe(final.closeReason);
    }
  });

  it("rejects appends after close with stream_closed and stores nothing", async () => {
    const { stub } = await newStream("close-append");
    await stub.append({ type: "test/a", payload: 1, idempotencyKey: "before" });
    await stub.close({ status: "ended", reason: "done" });
    const error = await rpcError(stub.append({ type: "test/a", payload: 2 }));
    expect(error).toMatchObject({ code: "stream_closed" });
    const batch = await rpcError(
      stub.appendBatch([
        { type: "test/a", payload: 3 },
        { type: "test/a", payload: 4 },
      ]),
    );
    expect(batch.code).toBe("stream_closed");
    expect(await stub.head()).toMatchObject({ eventCount: 1, closeStatus: "ended" });
    // Reads still work after close.
    const { events } = await stub.read({});
    expect(events.map((e) => e.payload)).toEqual([1]);
  });

  it("answers 404 on a stream that does not exist", async () => {
    const error = await rpcError(stubFor(uniquePath("close-missing")).close());
    expect(error).toMatchObject({ code: "not_found" });
  });
});

describe("invalid RPC input", () => {
  /** The stub seen loosely typed, so that ill-typed input can be sent as a client might. */
  interface LooseStream {
    appendBatch(events: unknown, options?: unknown): Promise<unknown>;
    append(event: unknown, options?: unknown): Promise<unknown>;
    read(options: unknown): Promise<unknown>;
    close(options: unknown): Promise<unknown>;
    create(name: string, path: string, options: unknown): Promise<unknown>;
  }
  type Call = (stub: LooseStream) => Promise<unknown>;
  const cases: { name: string; call: Call; where: string }[] = [
    {
      name: "an event type with a space",
      call: (s) => s.appendBatch([{ type: "has space", payload: 1 }]),
      where: "0.type",
    },
    {
      name: "an empty event type",
      call: (s) => s.appendBatch([{ type: "", payload: 1 }]),
      where: "0.type",
    },
    {
      name: "a numeric event type",
      call: (s) => s.appendBatch([{ type: 7, payload: 1 }]),
      where: "0.type",
    },
    {
      name: "a missing type",
      call: (s) => s.appendBatch([{ payload: 1 }]),
      where: "0.type",
    },
    {
      name: "a missing payload",
      call: (s) => s.appendBatch([{ type: "a/b" }]),
      where: "0.payload",
    },
    {
      name: "an extra field",
      call: (s) => s.appendBatch([{ type: "a/b", payload: 1, extra: true }]),
      where: "at 0:",
    },
    {
      name: "metadata that is not an object",
      call: (s) => s.appendBatch([{ type: "a/b", payload: 1, metadata: "m" }]),
      where: "0.metadata",
    },
    {
      name: "an empty idempotency key",
      call: (s) => s.appendBatch([{ type: "a/b", payload: 1, idempotencyKey: "" }]),
      where: "0.idempotencyKey",
    },
    {
      name: "a bad second event (the valid first one is not stored either)",
      call: (s) =>
        s.appendBatch([
          { type: "a/b", payload: 1 },
          { type: "a/b", payload: 2, idempotencyKey: 5 },
        ]),
      where: "1.idempotencyKey",
    },
    { name: "an empty batch", call: (s) => s.appendBatch([]), where: "(root)" },
    {
      name: "a batch that is not an array",
      call: (s) => s.appendBatch({ type: "a/b" }),
      where: "(root)",
    },
    {
      name: "append() with a bad event",
      call: (s) => s.append({ type: "a b", payload: 1 }),
      where: "0.type",
    },
    {
      name: "expectedOffset 0",
      call: (s) => s.append({ type: "a/b", payload: 1 }, { expectedOffset: 0 }),
      where: "expectedOffset",
    },
    {
      name: "an unknown append option",
      call: (s) => s.append({ type: "a/b", payload: 1 }, { expected: 1 }),
      where: "append options",
    },
    { name: "read limit 0", call: (s) => s.read({ limit: 0 }), where: "limit" },
    { name: "read after -1", call: (s) => s.read({ after: -1 }), where: "after" },
    {
      name: "a bad close status",
      call: (s) => s.close({ status: "cancelled" }),
      where: "status",
    },
  ];

  it.each(cases)(
    "rejects $name with validation_failed naming the path",
    async ({ call, where }) => {
      const { stub } = await newStream("invalid");
      await stub.append({ type: "test/seed", payload: 0 });
      const error = await rpcError(call(stub));
      expect(error).toMatchObject({ code: "validation_failed" });
      expect(error.message).toContain(where);
      expect(await stub.head()).toMatchObject({ eventCount: 1, closed: false });
      const { events } = await stub.read({});
      expect(events.map((e) => e.type)).toEqual(["test/seed"]);
    },
  );

  it("rejects invalid create options and creates nothing", async () => {
    const path = uniquePath("invalid-create");
    const stub = stubFor(path);
    const loose: LooseStream = stub;
    const invalid: unknown[] = [
      { contentType: "" },
      { ttlSeconds: -1 },
      { ttlSeconds: 1.5 },
      { expiresAt: "tomorrow" },
      { color: "red" },
    ];
    for (const options of invalid) {
      const error = await rpcError(loose.create(nameOf(path), path, options));
      expect(error).toMatchObject({ code: "validation_failed" });
    }
    expect(await rpcError(stub.head())).toMatchObject({ code: "not_found" });
  });

  it("reading after the tail is a 400 naming the bound", async () => {
    const { stub } = await newStream("read-past");
    await stub.append({ type: "test/a", payload: 1 });
    const error = await rpcError(stub.read({ after: 2 }));
    expect(error).toMatchObject({ code: "invalid_offset" });
    expect(error.message).toContain("between 0 and 1");
  });
});

describe("size limits", () => {
  it("rejects an event over 1,900,000 bytes with 413 and stores nothing", async () => {
    const { stub } = await newStream("too-large");
    await stub.append({ type: "test/seed", payload: 0 });
    const error = await rpcError(
      stub.append({ type: "a/b", payload: "x".repeat(MAX_MESSAGE_BYTES) }),
    );
    expect(error).toMatchObject({ code: "payload_too_large" });
    expect((await stub.head()).eventCount).toBe(1);
  });

  it("accepts an event of exactly the limit and rejects one byte more", async () => {
    const { stub } = await newStream("limit-edge");
    const fits = "x".repeat(MAX_MESSAGE_BYTES - STRING_EVENT_OVERHEAD);
    const stored = await stub.append({ type: "a/b", payload: fits });
    expect(stored.offset).toBe(1);
    expect((stored.payload as string).length).toBe(fits.length);
    const error = await rpcError(stub.append({ type: "a/b", payload: `${fits}x` }));
    expect(error).toMatchObject({ code: "payload_too_large" });
    const { events, head } = await stub.read({});
    expect(head.eventCount).toBe(1);
    expect(events[0]!.payload).toBe(fits);
  });

  it("counts UTF-8 bytes, not characters", async () => {
    const { stub } = await newStream("too-large-utf8");
    // 950,000 two-byte characters: under the limit in characters, over it in bytes.
    const error = await rpcError(stub.append({ type: "a/b", payload: "é".repeat(950_000) }));
    expect(error).toMatchObject({ code: "payload_too_large" });
    expect((await stub.head()).eventCount).toBe(0);
  });

  it("a batch where one event is too large stores none of it", async () => {
    const { stub } = await newStream("too-large-batch");
    const error = await rpcError(
      stub.appendBatch([
        { type: "a/b", payload: "small", idempotencyKey: "s1" },
        { type: "a/b", payload: "x".repeat(MAX_MESSAGE_BYTES + 10) },
        { type: "a/b", payload: "small too" },
      ]),
    );
    expect(error).toMatchObject({ code: "payload_too_large" });
    expect((await stub.head()).eventCount).toBe(0);
    expect(await stub.getByIdempotencyKey("s1")).toBeNull();
  });
});

describe("durability across evictions and aborts", () => {
  it("appends before and after an eviction read back densely with nothing lost", async () => {
    const { path, stub } = await newStream("evict");
    await stub.appendBatch(range(1, 10).map((i) => ({ type: "test/before", payload: i })));
    await stub.append({ type: "test/keyed", payload: 11, idempotencyKey: "survives" });
    await evictDurableObject(stub);
    const after = stubFor(path);
    const more = await after.appendBatch(
      range(12, 20).map((i) => ({ type: "test/after", payload: i })),
    );
    expect(more.map((e) => e.offset)).toEqual(range(12, 20));
    // The idempotency index survived too.
    const retry = await after.append({
      type: "test/keyed",
      payload: 0,
      idempotencyKey: "survives",
    });
    expect(retry).toMatchObject({ offset: 11, payload: 11 });
    await evictDurableObject(after);
    const { events, head } = await stubFor(path).read({});
    expect(head.eventCount).toBe(20);
    expect(events.map((e) => e.offset)).toEqual(range(1, 20));
    expect(events.map((e) => e.payload)).toEqual(range(1, 20));
  });

  it("a paged read interrupted by evictions returns every event exactly once", async () => {
    const { path, stub } = await newStream("evict-paged");
    for (let b = 0; b < 5; b++) {
      await stub.appendBatch(range(1, 10).map((i) => ({ type: "test/page", payload: b * 10 + i })));
    }
    const seen: number[] = [];
    let after = 0;
    let pages = 0;
    for (;;) {
      const page = await stubFor(path).read({ after, limit: 7 });
      pages += 1;
      seen.push(...page.events.map((e) => e.offset));
      expect(page.events.map((e) => e.payload)).toEqual(page.events.map((e) => e.offset));
      if (page.upToDate) break;
      after = page.events.at(-1)!.offset;
      // Evict between pages (every other page, so both warm and cold pages are read).
      if (pages % 2 === 1) await evictDurableObject(stubFor(path));
      expect(pages).toBeLessThan(20);
    }
    expect(seen).toEqual(range(1, 50));
    expect(pages).toBe(8);
  });

  it("abortAllDurableObjects between appends loses nothing committed", async () => {
    const { path, stub } = await newStream("abort");
    const first = await stub.appendBatch(
      range(1, 5).map((i) => ({ type: "test/a", payload: i, idempotencyKey: `k${i}` })),
    );
    await abortAllDurableObjects();
    const second = await stubFor(path).appendBatch(
      range(6, 10).map((i) => ({ type: "test/a", payload: i })),
    );
    await abortAllDurableObjects();
    const third = await stubFor(path).append({ type: "test/a", payload: 11 });
    expect([...first, ...second, third].map((e) => e.offset)).toEqual(range(1, 11));
    await abortAllDurableObjects();
    const fresh = stubFor(path);
    const { events, head } = await fresh.read({});
    expect(head.eventCount).toBe(11);
    expect(events.map((e) => e.offset)).toEqual(range(1, 11));
    expect(events.map((e) => e.payload)).toEqual(range(1, 11));
    expect(await fresh.getByIdempotencyKey("k3")).toMatchObject({ offset: 3, payload: 3 });
  });

  it("an abort racing in-flight appends keeps every acknowledged append, densely", async () => {
    const { path } = await newStream("abort-race");
    const inflight = range(1, 20).map((i) =>
      stubFor(path).append({ type: "test/race", payload: i, idempotencyKey: `r${i}` }),
    );
    const aborted = abortAllDurableObjects();
    const settled = await Promise.allSettled(inflight);
    await aborted;
    const acknowledged = settled.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
    const { events } = await stubFor(path).read({});
    // Whatever was committed is dense from 1, and every acknowledged append is in it.
    expect(events.map((e) => e.offset)).toEqual(range(1, events.length));
    const stored = new Map(events.map((e) => [e.offset, e]));
    for (const event of acknowledged) expect(stored.get(event.offset)).toEqual(event);
  });
});
