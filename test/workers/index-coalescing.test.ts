/**
 * The session list's row is written a moment after its batch and left to a newer batch when
 * one is already committed (src/sessions/processors/index-mirror.ts): a burst of turns costs
 * fewer D1 writes than index batches, and the row still ends exactly where the session is.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { MIRROR_MAX_LAG_MS, supersededRow } from "../../src/sessions/processors/index-mirror";
import type { SessionAgent } from "../../src/sessions/session-agent";
import { runInDurableObject } from "../support/rpc";
import {
  createSession,
  sendMessage,
  sessionAgent,
  sessionEvents,
  settledSession,
} from "../support/session-api";
import { waitFor } from "../support/wait";

describe("supersededRow", () => {
  it("leaves a row to a newer batch only while the last write is recent", () => {
    expect(supersededRow(true, 1_000, 1_010)).toBe(true);
    expect(supersededRow(false, 1_000, 1_010)).toBe(false);
    expect(supersededRow(true, 1_000, 1_000 + MIRROR_MAX_LAG_MS)).toBe(false);
  });
});

describe("the session's index row", () => {
  it("a burst of turns is mirrored in fewer writes than batches, and ends right", async () => {
    const id = await createSession();
    await sendMessage(id, "warm up");
    await settledSession(id, 2);
    const counts = { batches: 0, writes: 0 };
    await runInDurableObject(sessionAgent(id), (instance: SessionAgent) => {
      const index = instance.index;
      const processBatch = index.processBatch.bind(index);
      index.processBatch = (args) => {
        counts.batches++;
        return processBatch(args);
      };
      const write = Reflect.get(index, "write") as (row: unknown) => Promise<void>;
      Reflect.set(index, "write", (row: unknown) => {
        counts.writes++;
        return write(row);
      });
    });
    for (let i = 0; i < 5; i++) await sendMessage(id, `burst ${i}`);
    await settledSession(id, 12);
    const last = (await sessionEvents(id)).filter((e) => e.type === "turn/completed").at(-1)!;
    await waitFor(async () => {
      const row = await env.DB.prepare("SELECT status, last_offset FROM sessions WHERE id = ?")
        .bind(id)
        .first<{ status: string; last_offset: number }>();
      return row?.status === "idle" && row.last_offset >= last.offset;
    });
    expect(counts.writes).toBeGreaterThan(0);
    expect(counts.writes, JSON.stringify(counts)).toBeLessThan(counts.batches);
  });
});
