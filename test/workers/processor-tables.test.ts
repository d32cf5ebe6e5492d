/**
 * ProcessorHost tables: a processor's projection rows commit in the transaction of its state
 * and checkpoint (applied exactly once however often a batch is delivered, not at all when
 * the batch fails), are namespaced per processor, are cleared by reset, and a stored state of
 * an older shape is upgraded with its rows on first read. `waitForCheckpoint` resolves on the
 * commit that reaches the offset.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { DeliveryBatch } from "../../src/streams/delivery";
import { newHost, rejectionOf } from "../support/fixtures";

function notes(hostName: string, from: number, texts: string[]): DeliveryBatch {
  return {
    stream: "/ph/direct",
    streamName: "default:/ph/direct",
    subscriptionKey: `ledger@TEST_HOSTS/${hostName}`,
    anchorOffset: 0,
    events: texts.map((text, i) => ({
      offset: from + i,
      type: "test/noted",
      payload: { text },
      createdAt: new Date(0).toISOString(),
    })),
    nextOffset: from + texts.length,
  };
}

describe("processor tables", () => {
  it("projects a batch exactly once, however often it is delivered", async () => {
    const { name, stub } = newHost("tables");
    const batch = notes(name, 1, ["a", "b", "c"]);
    expect(await stub.deliverTo("ledger", batch)).toEqual({ ackOffset: 3 });
    expect(await stub.deliverTo("ledger", batch)).toEqual({ ackOffset: 3 });
    await stub.deliverTo("ledger", notes(name, 2, ["b", "c", "d"]));
    expect(await stub.ledgerEntries()).toEqual([
      { offset: 1, text: "a" },
      { offset: 2, text: "b" },
      { offset: 3, text: "c" },
      { offset: 4, text: "d" },
    ]);
    expect((await stub.snapshot("ledger")).state).toEqual({ count: 4 });
  });

  it("writes neither rows nor state nor checkpoint when the projection fails", async () => {
    const { name, stub } = newHost("tables");
    await stub.deliverTo("ledger", notes(name, 1, ["a"]));
    const error = await rejectionOf(stub.deliverTo("ledger", notes(name, 2, ["b", "explode"])));
    expect(error.message).toMatch(/projection failing on purpose/);
    expect(await stub.ledgerEntries()).toEqual([{ offset: 1, text: "a" }]);
    expect(await stub.snapshot("ledger")).toEqual({ state: { count: 1 }, checkpoint: 1 });
  });

  it("namespaces tables per processor and clears them on reset", async () => {
    const { name, stub } = newHost("tables");
    await stub.deliverTo("ledger", notes(name, 1, ["a", "b"]));
    const tables = await runInDurableObject(stub, (_instance, state) =>
      state.storage.sql
        .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'")
        .toArray()
        .map((r) => r.name),
    );
    expect(tables).toContain("p_ledger__entries");
    await stub.resetProcessor("ledger");
    expect(await stub.ledgerEntries()).toEqual([]);
    expect(await stub.snapshot("ledger")).toEqual({ state: { count: 0 }, checkpoint: 0 });
    // Rebuilt from the stream, the projection is the same again.
    await stub.deliverTo("ledger", notes(name, 1, ["a", "b"]));
    expect((await stub.ledgerEntries()).map((e) => e.text)).toEqual(["a", "b"]);
  });

  it("upgrades a stored state of an older shape, moving what it held into rows", async () => {
    const { name, stub } = newHost("tables");
    await stub.writeStoredState("ledger", { notes: ["old-1", "old-2"] }, 7);
    expect(await stub.snapshot("ledger")).toEqual({ state: { count: 2 }, checkpoint: 7 });
    expect((await stub.ledgerEntries()).map((e) => e.text)).toEqual(["old-1", "old-2"]);
    // Upgraded once: the stored row is in the new shape now, the rows are not written twice.
    expect(await stub.snapshot("ledger")).toEqual({ state: { count: 2 }, checkpoint: 7 });
    await stub.deliverTo("ledger", notes(name, 8, ["new"]));
    expect((await stub.ledgerEntries()).map((e) => e.text)).toEqual(["old-1", "old-2", "new"]);
    expect((await stub.snapshot("ledger")).state).toEqual({ count: 3 });
  });

  it("resolves waitForCheckpoint on the commit that reaches the offset, and times out loudly", async () => {
    const { name, stub } = newHost("tables");
    const waiting = stub.waitForCheckpoint("ledger", 3);
    await stub.deliverTo("ledger", notes(name, 1, ["a", "b"]));
    await stub.deliverTo("ledger", notes(name, 3, ["c"]));
    expect(await waiting).toBe(3);
    expect(await stub.waitForCheckpoint("ledger", 2)).toBe(3);
    const error = await rejectionOf(stub.waitForCheckpoint("ledger", 10, 50));
    expect(error.message).toMatch(/did not reach offset 10/);
  });
});
