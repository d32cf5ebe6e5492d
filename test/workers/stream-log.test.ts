/**
 * The stream log (src/streams/log.ts) on a Durable Object's own SQLite: what it caches in
 * memory — the metadata row, the messages of recent commits — always matches what storage
 * holds, a rolled-back transaction leaves nothing of itself behind in either, and an append
 * costs a fixed handful of statements whatever its size or keys.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DomainError } from "../../src/errors/domain";
import { StreamLog } from "../../src/streams/log";
import { type EncodedMessage, encodeEvent } from "../../src/streams/messages";
import { runInDurableObject } from "../support/rpc";

const event = (payload: unknown, idempotencyKey?: string): EncodedMessage =>
  encodeEvent({ type: "test/e", payload, ...(idempotencyKey ? { idempotencyKey } : {}) });

/** SQL statements run through a storage, by their first words. */
class Counted {
  statements: string[] = [];
  readonly storage: DurableObjectStorage;
  constructor(real: DurableObjectStorage) {
    const statements = this.statements;
    const sql = {
      exec: (query: string, ...bindings: unknown[]) => {
        statements.push(query.replace(/\s+/g, " ").trim().split(" ").slice(0, 3).join(" "));
        return real.sql.exec(query, ...bindings);
      },
    };
    this.storage = {
      sql,
      transactionSync: <T>(fn: () => T) => real.transactionSync(fn),
    } as unknown as DurableObjectStorage;
  }
  take(): string[] {
    return this.statements.splice(0);
  }
}

/** Runs `fn` on a new stream log in a Durable Object of its own. */
function withLog<R>(
  fn: (log: StreamLog, state: DurableObjectState) => R,
  ttlSeconds: number | null = null,
): Promise<R> {
  const ns = env.TEST_SUBSCRIBERS;
  const stub = ns.get(ns.idFromName(`stream-log-${crypto.randomUUID()}`));
  return runInDurableObject(stub, (_instance, state) => {
    const log = new StreamLog(state.storage);
    log.transaction(() =>
      log.create(
        {
          id: "s1",
          name: "log-test",
          path: "/log-test",
          contentType: "application/json",
          ttlSeconds,
          expiresAt: null,
          fork: null,
        },
        Date.now(),
        [],
      ),
    );
    return fn(log, state);
  });
}

/** The stored rows as a fresh log (nothing cached) reads them. */
function storedBodies(state: DurableObjectState): [number, string][] {
  return new StreamLog(state.storage)
    .read(0, Number.MAX_SAFE_INTEGER, 1_000)
    .map((m) => [m.offset, m.body as string]);
}

const boom = () => {
  throw new Error("boom");
};

describe("a transaction that throws", () => {
  it("leaves the cached metadata as storage has it: the next append continues densely", async () => {
    const result = await withLog((log, state) => {
      log.transaction(() => log.append([event(1)], 1));
      expect(() =>
        log.transaction(() => {
          log.append([event(2), event(3)], 2);
          log.close(2, "ended", null);
          boom();
        }),
      ).toThrow("boom");
      const meta = log.meta()!;
      const appended = log.transaction(() => log.append([event(4)], 3));
      return { meta, appended, stored: storedBodies(state), after: log.meta()! };
    });
    expect(result.meta).toMatchObject({ tail: 1, closed_at: null, close_status: null });
    expect(result.appended.offsets).toEqual([2]);
    expect(result.stored).toEqual([
      [1, JSON.stringify({ type: "test/e", payload: 1 })],
      [2, JSON.stringify({ type: "test/e", payload: 4 })],
    ]);
    expect(result.after.tail).toBe(2);
  });

  it("inside another transaction rolls back only itself; the outer one commits the rest", async () => {
    const result = await withLog((log, state) => {
      log.transaction(() => {
        log.transaction(() => log.append([event("a")], 1));
        try {
          log.transaction(() => {
            log.append([event("b")], 1);
            boom();
          });
        } catch {
          // the inner failure is handled; the outer transaction goes on
        }
        log.append([event("c")], 1);
      });
      return {
        tail: log.meta()!.tail,
        page: log.readPage(0, 2, 10, 1_000_000).map((m) => m.body),
        stored: storedBodies(state),
      };
    });
    const a = JSON.stringify({ type: "test/e", payload: "a" });
    const c = JSON.stringify({ type: "test/e", payload: "c" });
    expect(result.tail).toBe(2);
    expect(result.stored).toEqual([
      [1, a],
      [2, c],
    ]);
    expect(result.page).toEqual([a, c]);
  });

  it("never lets readers see its messages, even those of a nested transaction that had returned", async () => {
    const pages = await withLog((log) => {
      log.transaction(() => log.append([event("kept")], 1));
      expect(() =>
        log.transaction(() => {
          log.transaction(() => log.append([event("rolled back")], 2));
          boom();
        }),
      ).toThrow("boom");
      log.transaction(() => log.append([event("second")], 3));
      return {
        page: log.readPage(1, 2, 10, 1_000_000).map((m) => m.body),
        read: log.read(0, 2, 10).map((m) => m.body),
      };
    });
    const second = JSON.stringify({ type: "test/e", payload: "second" });
    expect(pages.page).toEqual([second]);
    expect(pages.read).toEqual([JSON.stringify({ type: "test/e", payload: "kept" }), second]);
  });

  it("makes the metadata be read back and validated again: a corrupt row is refused as corrupt_record", async () => {
    const caught = await withLog((log, state) => {
      log.transaction(() => log.append([event(1)], 1));
      // Behind the cache's back: the live log keeps answering what it cached…
      state.storage.sql.exec("UPDATE stream_meta SET tail = -5 WHERE singleton = 1");
      expect(log.meta()!.tail).toBe(1);
      // …until a transaction fails, after which the row is read again.
      expect(() => log.transaction(boom)).toThrow("boom");
      try {
        log.meta();
        return null;
      } catch (error) {
        return error;
      }
    });
    expect(caught).toBeInstanceOf(DomainError);
    expect(caught).toMatchObject({ code: "corrupt_record" });
    expect((caught as Error).message).toMatch(/^stream metadata is corrupt: at tail/);
  });
});

describe("statements per append", () => {
  it("an append of new events is one INSERT and one metadata UPDATE, keys or not, with close and TTL", async () => {
    const counts = await withLog((log, state) => {
      const counted = new Counted(state.storage);
      const live = new StreamLog(counted.storage);
      counted.take();
      live.meta();
      const out: Record<string, string[]> = { metaRead: counted.take() };
      live.transaction(() => live.append([event(1)], 1));
      out.one = counted.take();
      live.transaction(() => live.append([event(2, "k2"), event(3, "k3"), event(4, "k4")], 2));
      out.threeKeyed = counted.take();
      live.transaction(() => {
        live.append([event(5)], 3);
        live.setStreamSeq("a");
        live.touch(3);
        live.close(3, "ended", null);
      });
      out.withClose = counted.take();
      const stored = new StreamLog(state.storage).meta()!;
      out.stored = [
        stored.tail,
        stored.close_status,
        stored.last_stream_seq,
        stored.expires_at,
      ].map(String);
      expect(log).toBeDefined();
      return out;
    }, 60);
    expect(counts.metaRead).toEqual(["SELECT * FROM"]);
    expect(counts.one).toEqual(["INSERT INTO stream_messages", "UPDATE stream_meta SET"]);
    expect(counts.threeKeyed).toEqual(["INSERT INTO stream_messages", "UPDATE stream_meta SET"]);
    expect(counts.withClose).toEqual(["INSERT INTO stream_messages", "UPDATE stream_meta SET"]);
    // The one UPDATE wrote every column changed: tail, Stream-Seq, the TTL's expiry, the close.
    expect(counts.stored).toEqual(["5", "ended", "a", String(3 + 60_000)]);
  });

  it("a batch of 60 takes one INSERT per 24 rows; a stored key costs a refused INSERT and one lookup more", async () => {
    const counts = await withLog((_log, state) => {
      const counted = new Counted(state.storage);
      const live = new StreamLog(counted.storage);
      live.meta();
      counted.take();
      const batch = Array.from({ length: 60 }, (_, i) => event(i, `b-${i}`));
      live.transaction(() => live.append(batch, 1));
      const big = counted.take();
      const retried = live.transaction(() => live.append([event("new"), event(0, "b-0")], 2));
      return { big, retry: counted.take(), offsets: retried.offsets, tail: live.meta()!.tail };
    });
    expect(counts.big).toEqual([
      "INSERT INTO stream_messages",
      "INSERT INTO stream_messages",
      "INSERT INTO stream_messages",
      "UPDATE stream_meta SET",
    ]);
    expect(counts.retry).toEqual([
      "INSERT INTO stream_messages",
      "SELECT idempotency_key, offset",
      "INSERT INTO stream_messages",
      "UPDATE stream_meta SET",
    ]);
    expect(counts.offsets).toEqual([61, 1]);
    expect(counts.tail).toBe(61);
  });
});

describe("recent commits in memory", () => {
  it("serve a live read of a fresh commit without a statement, exactly as storage would", async () => {
    const result = await withLog((_log, state) => {
      const counted = new Counted(state.storage);
      const live = new StreamLog(counted.storage);
      live.transaction(() => live.append([event(1), event(2, "k")], 1));
      live.transaction(() => live.append([event(3)], 2));
      counted.take();
      const page = live.readPage(1, 3, 100, 1_000_000);
      const read = live.read(0, 3, 100);
      const cut = live.readPage(0, 3, 2, 1_000_000);
      const bytesCut = live.read(0, 3, 100, 10);
      const statements = counted.take();
      const fresh = new StreamLog(state.storage);
      return {
        statements,
        page,
        read,
        cut,
        bytesCut,
        expected: {
          page: fresh.readPage(1, 3, 100, 1_000_000),
          read: fresh.read(0, 3, 100),
          cut: fresh.readPage(0, 3, 2, 1_000_000),
          bytesCut: fresh.read(0, 3, 100, 10),
        },
      };
    });
    expect(result.statements).toEqual([]);
    expect(result.page).toEqual(result.expected.page);
    expect(result.read).toEqual(result.expected.read);
    expect(result.cut).toEqual(result.expected.cut);
    expect(result.bytesCut).toEqual(result.expected.bytesCut);
    expect(result.read.map((m) => m.offset)).toEqual([1, 2, 3]);
    expect(result.read[1]).toMatchObject({ appendStart: 1, idempotencyKey: "k", type: "test/e" });
  });

  it("are bounded: an older range is read from storage, and byte bodies are never kept", async () => {
    const result = await withLog((_log, state) => {
      const counted = new Counted(state.storage);
      const live = new StreamLog(counted.storage);
      for (let i = 0; i < 3; i++) {
        live.transaction(() =>
          live.append(
            Array.from({ length: 200 }, (_, n) => event(i * 200 + n)),
            1,
          ),
        );
      }
      counted.take();
      const old = live.readPage(0, 10, 100, 1_000_000).map((m) => m.offset);
      const oldStatements = counted.take();
      const recent = live.readPage(590, 600, 100, 1_000_000).map((m) => m.offset);
      const recentStatements = counted.take();
      live.transaction(() =>
        live.append([{ body: new Uint8Array([1, 2, 3]), type: null, idempotencyKey: null }], 2),
      );
      counted.take();
      const bytes = live.readPage(600, 601, 10, 1_000_000);
      return { old, oldStatements, recent, recentStatements, bytes, after: counted.take() };
    });
    expect(result.old).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect(result.oldStatements).toEqual(["SELECT offset, body,"]);
    expect(result.recent).toEqual(Array.from({ length: 10 }, (_, i) => 591 + i));
    expect(result.recentStatements).toEqual([]);
    expect(result.after).toEqual(["SELECT offset, body,"]);
    expect(result.bytes).toHaveLength(1);
    expect([...new Uint8Array(result.bytes[0]!.body as ArrayBuffer)]).toEqual([1, 2, 3]);
  });
});
