/** The DeltaWriter (src/sessions/processors/delta-writer.ts): coalescing and bounds. */
import { afterEach, describe, expect, it, vi } from "vitest";
import { storedBytes } from "../../src/sessions/content";
import {
  DEFAULT_DELTA_LIMITS,
  type Delta,
  DeltaWriter,
  takeDeltas,
} from "../../src/sessions/processors/delta-writer";

/** A write that stays in flight until released, recording every append. */
function gatedWrite() {
  const appends: Delta[][] = [];
  let release: (() => void) | null = null;
  const write = (batch: Delta[]) => {
    appends.push(batch);
    return new Promise<void>((resolve) => {
      release = resolve;
    });
  };
  return {
    appends,
    write,
    release: () => {
      const r = release;
      release = null;
      r?.();
    },
  };
}

afterEach(() => {
  vi.useRealTimers();
});

/** Lets the current task end (the writer's first append waits for that). */
const nextTask = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

describe("DeltaWriter", () => {
  it("sends the first text when the current task ends and coalesces what arrives during an append", async () => {
    const gate = gatedWrite();
    const writer = new DeltaWriter(gate.write, { ...DEFAULT_DELTA_LIMITS, minIntervalMs: 0 });
    writer.push("Hello ");
    expect(gate.appends).toEqual([]);
    await nextTask();
    expect(gate.appends).toEqual([[{ index: 0, text: "Hello " }]]);
    for (const word of ["big ", "wide ", "world"]) writer.push(word);
    expect(gate.appends).toHaveLength(1); // still in flight: nothing more goes out
    gate.release();
    await Promise.resolve();
    await Promise.resolve();
    expect(gate.appends[1]).toEqual([{ index: 1, text: "big wide world" }]);
    const done = writer.flush();
    gate.release();
    await done;
    expect(gate.appends).toHaveLength(2);
  });

  it("streams 1 MB of word deltas in few, bounded appends that concatenate to the text", async () => {
    const appends: Delta[][] = [];
    const writer = new DeltaWriter(async (batch) => {
      appends.push(batch);
      await new Promise((r) => setTimeout(r, 0));
    });
    const words = Array.from({ length: 200_000 }, (_, i) => `w${i % 1000} `);
    for (const word of words) writer.push(word);
    await writer.flush();
    const deltas = appends.flat();
    expect(deltas.map((d) => d.text).join("")).toBe(words.join(""));
    expect(deltas.map((d) => d.index)).toEqual(deltas.map((_, i) => i));
    expect(deltas.length).toBeLessThan(words.length / 100);
    for (const batch of appends) {
      expect(batch.length).toBeLessThanOrEqual(DEFAULT_DELTA_LIMITS.maxEvents);
      const bytes = batch.reduce((n, d) => n + storedBytes(d.text), 0);
      expect(bytes).toBeLessThanOrEqual(DEFAULT_DELTA_LIMITS.maxAppendBytes);
      for (const d of batch)
        expect(storedBytes(d.text)).toBeLessThanOrEqual(DEFAULT_DELTA_LIMITS.maxEventBytes);
    }
  });

  it("starts appends at least minIntervalMs apart, coalescing a slow stream; flush does not wait", async () => {
    vi.useFakeTimers();
    const appends: Delta[][] = [];
    const writer = new DeltaWriter(
      async (batch) => {
        appends.push(batch);
      },
      { ...DEFAULT_DELTA_LIMITS, minIntervalMs: 50 },
    );
    writer.push("a ");
    await vi.advanceTimersByTimeAsync(0); // the task ends: the first append goes out and is done
    expect(appends).toEqual([[{ index: 0, text: "a " }]]);
    writer.push("b ");
    await vi.advanceTimersByTimeAsync(10);
    writer.push("c ");
    await vi.advanceTimersByTimeAsync(10);
    expect(appends).toHaveLength(1); // tokens arriving one by one wait for the interval...
    await vi.advanceTimersByTimeAsync(30);
    expect(appends[1]).toEqual([{ index: 1, text: "b c " }]); // ...and go out together
    writer.push("d");
    await vi.advanceTimersByTimeAsync(1);
    expect(appends).toHaveLength(2);
    await writer.flush(); // the reply is complete: no waiting for the interval
    expect(appends[2]).toEqual([{ index: 2, text: "d" }]);
  });

  it("rethrows the first append failure from flush and stops writing", async () => {
    let calls = 0;
    const writer = new DeltaWriter(async () => {
      calls += 1;
      throw new Error("refused");
    });
    writer.push("a");
    await expect(writer.flush()).rejects.toThrow("refused");
    writer.push("b");
    await expect(writer.flush()).rejects.toThrow("refused");
    expect(calls).toBe(1);
  });
});

describe("DeltaWriter.finish", () => {
  it("hands back the last deltas instead of writing them (they go out with the completion)", async () => {
    const gate = gatedWrite();
    const writer = new DeltaWriter(gate.write, { ...DEFAULT_DELTA_LIMITS, minIntervalMs: 0 });
    writer.push("Hello ");
    await nextTask(); // the first append is out, in flight
    for (const word of ["big ", "wide ", "world"]) writer.push(word);
    const finished = writer.finish();
    gate.release(); // the first append completes; the drain must not take the rest
    expect(await finished).toEqual([{ index: 1, text: "big wide world" }]);
    expect(gate.appends).toEqual([[{ index: 0, text: "Hello " }]]);
    expect(writer.events).toBe(2);
  });

  it("hands back a reply completed within one task whole: it goes out in one append with its outcome", async () => {
    const appends: Delta[][] = [];
    const writer = new DeltaWriter(async (batch) => {
      appends.push(batch);
    });
    for (const word of ["You ", "said: ", "hi"]) writer.push(word);
    expect(await writer.finish()).toEqual([{ index: 0, text: "You said: hi" }]);
    expect(appends).toEqual([]);
    await nextTask(); // nor is anything written later
    expect(appends).toEqual([]);
  });

  it("writes what exceeds one append first and hands back only the last append's deltas", async () => {
    const appends: Delta[][] = [];
    const limits = { ...DEFAULT_DELTA_LIMITS, maxEventBytes: 8, maxEvents: 2, minIntervalMs: 0 };
    const writer = new DeltaWriter(async (batch) => {
      appends.push(batch);
    }, limits);
    writer.push("abcdefgh".repeat(5)); // five 8-byte events; at most two per append
    const last = await writer.finish();
    expect(appends.map((a) => a.length)).toEqual([2, 2]);
    expect(last).toEqual([{ index: 4, text: "abcdefgh" }]);
    expect([...appends.flat(), ...last].map((d) => d.text).join("")).toBe("abcdefgh".repeat(5));
  });

  it("hands back nothing when every delta is already written", async () => {
    const appends: Delta[][] = [];
    const writer = new DeltaWriter(async (batch) => {
      appends.push(batch);
    });
    writer.push("done");
    await writer.flush();
    expect(await writer.finish()).toEqual([]);
    expect(appends).toEqual([[{ index: 0, text: "done" }]]);
  });
});

describe("takeDeltas", () => {
  const limits = { maxEventBytes: 10, maxEvents: 3, maxAppendBytes: 25, minIntervalMs: 0 };

  it("cuts events by bytes and the append by count and bytes", () => {
    const pending = "abcdefghijklmnopqrstuvwxyz0123456789";
    const first = takeDeltas(pending, 5, limits);
    expect(first.deltas).toEqual([
      { index: 5, text: "abcdefghij" },
      { index: 6, text: "klmnopqrst" },
      { index: 7, text: "uvwxy" },
    ]);
    expect(first.consumed).toBe(25);
    const count = takeDeltas("x".repeat(100), 0, { ...limits, maxAppendBytes: 1000 });
    expect(count.deltas).toHaveLength(3);
    expect(count.consumed).toBe(30);
  });

  it("measures escaped bytes and never splits a surrogate pair", () => {
    const { deltas } = takeDeltas('😀😀😀"""', 0, { ...limits, maxEventBytes: 7 });
    expect(deltas.map((d) => d.text)).toEqual(["😀", "😀", '😀"']);
    const quotes = takeDeltas('""""""', 0, { ...limits, maxEventBytes: 6, maxAppendBytes: 100 });
    expect(quotes.deltas.map((d) => d.text)).toEqual(['"""', '"""']);
  });
});
