/**
 * ProcessorHost: exactly-once reduction per batch, checkpoints in the host's SQLite, schema
 * defaults on resume, serialised batches, failure and redelivery, blockProcessorWhile vs
 * runInBackground, the side-effect anchor and pending obligations, several processors on one
 * host, a processor appending to the stream it consumes, and invalid consumed payloads.
 *
 * Batches are either hand-made and handed to the host directly (`deliverTo`), or delivered
 * for real by a Stream DO subscription.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import type { DeliveryBatch } from "../../src/streams/delivery";
import type { JsonValue, StreamEvent } from "../../src/streams/messages";
import { newHost, rejectionOf, uid } from "../support/fixtures";
import { evictDurableObject, runInDurableObject } from "../support/rpc";
import { pumpUntil, type StreamClient, streamClient } from "../support/streams";
import { pause, waitFor } from "../support/wait";

/** A fresh JSON stream `default:/ph/<label>-<id>`. */
async function newStream(label: string) {
  const path = `/ph/${label}-${uid()}`;
  const name = `default:${path}`;
  const stub = streamClient(name);
  await stub.create(name, path);
  return { path, name, stub };
}

/** A fresh host with a unique name (storage is shared by the tests of a file). */
type RawEvent = [offset: number, type: string, payload: JsonValue];

/** A hand-made delivery batch for `processor` on host `hostName`. */
function batchOf(
  processor: string,
  hostName: string,
  events: RawEvent[],
  options: { anchorOffset?: number; nextOffset?: number } = {},
): DeliveryBatch {
  const last = events.at(-1)?.[0] ?? 0;
  return {
    stream: "/ph/direct",
    streamName: "default:/ph/direct",
    subscriptionKey: `${processor}@TEST_HOSTS/${hostName}`,
    anchorOffset: options.anchorOffset ?? 0,
    events: events.map(([offset, type, payload]) => ({
      offset,
      type,
      payload,
      createdAt: new Date(0).toISOString(),
    })),
    nextOffset: options.nextOffset ?? last + 1,
  };
}

const inc = (offset: number, by: number): RawEvent => [offset, "test/incremented", { by }];
const note = (offset: number): RawEvent => [offset, "test/noted", { text: `n${offset}` }];
const step = (offset: number, id: string, action = "none"): RawEvent => [
  offset,
  "test/stepped",
  { id, action },
];

async function subscription(stream: StreamClient, processor: string, hostName: string) {
  const key = `${processor}@TEST_HOSTS/${hostName}`;
  const sub = (await stream.listSubscriptions()).find((s) => s.key === key);
  if (!sub) throw new Error(`no subscription ${key}`);
  return sub;
}

/** The subscription has consumed the whole stream. */
const caughtUp = (stream: StreamClient, processor: string, hostName: string) => async () =>
  (await subscription(stream, processor, hostName)).lag === 0;

async function eventsOf(stream: StreamClient): Promise<StreamEvent[]> {
  return (await stream.read({ after: 0, limit: 10_000 })).events;
}

afterEach(() => {
  vi.restoreAllMocks();
});

// ---- exactly-once reduction -----------------------------------------------------------

describe("reduce and checkpoint", () => {
  it("reduces each consumed event once and writes state + checkpoint once per batch", async () => {
    const { name, stub } = newHost("once");
    // Count the writes to processor_state with a trigger.
    await runInDurableObject(stub, (_instance, state) => {
      state.storage.sql.exec("CREATE TABLE IF NOT EXISTS state_writes (n INTEGER)");
      state.storage.sql.exec(
        `CREATE TRIGGER IF NOT EXISTS count_insert AFTER INSERT ON processor_state
         BEGIN INSERT INTO state_writes (n) VALUES (1); END`,
      );
      state.storage.sql.exec(
        `CREATE TRIGGER IF NOT EXISTS count_update AFTER UPDATE ON processor_state
         BEGIN INSERT INTO state_writes (n) VALUES (1); END`,
      );
    });
    const writes = () =>
      runInDurableObject(
        stub,
        (_i, state) =>
          state.storage.sql.exec<{ c: number }>("SELECT COUNT(*) AS c FROM state_writes").one().c,
      );

    const first = await stub.deliverTo(
      "counter",
      batchOf("counter", name, [inc(1, 1), note(2), inc(3, 10), inc(4, 100)]),
    );
    expect(first).toEqual({ ackOffset: 4 });
    expect(await stub.snapshot("counter")).toEqual({
      state: { total: 111, seen: 3 },
      checkpoint: 4,
    });
    expect(await writes()).toBe(1);
    expect((await stub.effects()).map((e) => e.offset)).toEqual([1, 3, 4]);

    // An overlapping batch: only the offsets past the checkpoint are reduced.
    const second = await stub.deliverTo(
      "counter",
      batchOf("counter", name, [inc(3, 10), inc(4, 100), inc(5, 1000), note(6)]),
    );
    expect(second).toEqual({ ackOffset: 6 });
    expect(await stub.snapshot("counter")).toEqual({
      state: { total: 1111, seen: 4 },
      checkpoint: 6,
    });
    expect(await writes()).toBe(2);
    expect((await stub.effects()).map((e) => e.offset)).toEqual([1, 3, 4, 5]);
  });

  it("a fully replayed batch is a no-op: same ackOffset, no side effects, state unchanged", async () => {
    const { name, stub } = newHost("replay");
    const batch = batchOf("counter", name, [inc(1, 2), inc(2, 3), note(3)]);
    const first = await stub.deliverTo("counter", batch);
    const before = await stub.snapshot("counter");
    const effectsBefore = await stub.effects();
    expect(first).toEqual({ ackOffset: 3 });
    expect(before).toEqual({ state: { total: 5, seen: 2 }, checkpoint: 3 });

    const second = await stub.deliverTo("counter", batch);
    expect(second).toEqual(first);
    expect(await stub.snapshot("counter")).toEqual(before);
    expect(await stub.effects()).toEqual(effectsBefore);

    // An older batch wholly below the checkpoint acknowledges the checkpoint.
    const older = await stub.deliverTo("counter", batchOf("counter", name, [inc(1, 2)]));
    expect(older).toEqual({ ackOffset: 3 });
    expect(await stub.snapshot("counter")).toEqual(before);
  });

  it("unconsumed events advance the checkpoint (in the batch, or filtered out before it)", async () => {
    const { name, stub } = newHost("unconsumed");
    // Only test/noted events: nothing to reduce, but the checkpoint moves past them.
    expect(
      await stub.deliverTo("counter", batchOf("counter", name, [note(1), note(2), note(3)])),
    ).toEqual({ ackOffset: 3 });
    expect(await stub.snapshot("counter")).toEqual({
      state: { total: 0, seen: 0 },
      checkpoint: 3,
    });
    // A filtered batch whose nextOffset is past its last event (7..9 did not match).
    expect(
      await stub.deliverTo("counter", batchOf("counter", name, [inc(6, 1)], { nextOffset: 10 })),
    ).toEqual({ ackOffset: 9 });
    expect(await stub.snapshot("counter")).toEqual({
      state: { total: 1, seen: 1 },
      checkpoint: 9,
    });
    expect((await stub.effects()).map((e) => e.offset)).toEqual([6]);
  });

  it("resumes from stored state, applying schema defaults to an old-shape row", async () => {
    const { name, stub } = newHost("resume");
    // A row written by an older version of the processor: no `seen` field (it has a default).
    await runInDurableObject(stub, (_instance, state) => {
      state.storage.sql.exec(
        "INSERT INTO processor_state (processor, state, checkpoint, updated_at) VALUES (?, ?, ?, ?)",
        "counter",
        JSON.stringify({ total: 40 }),
        7,
        Date.now(),
      );
    });
    expect(await stub.snapshot("counter")).toEqual({
      state: { total: 40, seen: 0 },
      checkpoint: 7,
    });
    const ack = await stub.deliverTo(
      "counter",
      batchOf("counter", name, [inc(6, 1000), inc(7, 1000), inc(8, 2)]),
    );
    expect(ack).toEqual({ ackOffset: 8 });
    expect(await stub.snapshot("counter")).toEqual({
      state: { total: 42, seen: 1 },
      checkpoint: 8,
    });
    // The stored row now has the full shape.
    const stored = await runInDurableObject(
      stub,
      (_i, state) =>
        state.storage.sql
          .exec<{ state: string }>("SELECT state FROM processor_state WHERE processor = 'counter'")
          .one().state,
    );
    expect(JSON.parse(stored)).toEqual({ total: 42, seen: 1 });
  });

  it("a stored state changed behind the host's back is refused by the next instance that reads it", async () => {
    const { name, stub } = newHost("tampered");
    expect(await stub.deliverTo("counter", batchOf("counter", name, [inc(1, 5)]))).toEqual({
      ackOffset: 1,
    });
    expect(await stub.snapshot("counter")).toEqual({ state: { total: 5, seen: 1 }, checkpoint: 1 });
    await runInDurableObject(stub, (_instance, state) => {
      state.storage.sql.exec(
        "UPDATE processor_state SET state = ? WHERE processor = 'counter'",
        JSON.stringify({ total: "five", seen: 1 }),
      );
    });
    // Only the host writes its rows: the live instance keeps serving what it committed...
    expect(await stub.snapshot("counter")).toEqual({ state: { total: 5, seen: 1 }, checkpoint: 1 });
    // ...and an instance that reads the row from storage validates it, and refuses it.
    await evictDurableObject(stub);
    expect((await rejectionOf(stub.snapshot("counter"))).message).toMatch(
      /stored state of processor counter is corrupt: it does not match its schema/,
    );
    expect(
      (await rejectionOf(stub.deliverTo("counter", batchOf("counter", name, [inc(2, 1)])))).message,
    ).toMatch(/stored state of processor counter is corrupt/);
  });

  it("a fresh instance reads state and checkpoint from storage, not from what the last one knew", async () => {
    const { name, stub } = newHost("fresh");
    await stub.deliverTo("counter", batchOf("counter", name, [inc(1, 5), inc(2, 5)]));
    expect(await stub.snapshot("counter")).toEqual({
      state: { total: 10, seen: 2 },
      checkpoint: 2,
    });
    // Another version of the row (valid, further on), as a restore from a backup would leave it.
    await runInDurableObject(stub, (_instance, state) => {
      state.storage.sql.exec(
        "UPDATE processor_state SET state = ?, checkpoint = 40 WHERE processor = 'counter'",
        JSON.stringify({ total: 400 }),
      );
    });
    await evictDurableObject(stub);
    expect(await stub.waitForCheckpoint("counter", 40)).toBe(40);
    expect(await stub.snapshot("counter")).toEqual({
      state: { total: 400, seen: 0 },
      checkpoint: 40,
    });
    // Batches are judged against the stored checkpoint: offsets up to 40 are not reduced again.
    expect(
      await stub.deliverTo("counter", batchOf("counter", name, [inc(40, 1), inc(41, 1)])),
    ).toEqual({ ackOffset: 41 });
    expect(await stub.snapshot("counter")).toEqual({
      state: { total: 401, seen: 1 },
      checkpoint: 41,
    });
  });

  it("a batch whose commit fails leaves state and checkpoint where they were, in memory and in storage", async () => {
    const { name, stub } = newHost("failed-commit");
    await stub.deliverTo("counter", batchOf("counter", name, [inc(1, 5)]));
    // The state row cannot be written: the commit's transaction throws after the reduction.
    await runInDurableObject(stub, (_instance, state) => {
      state.storage.sql.exec(
        `CREATE TRIGGER refuse_state BEFORE UPDATE ON processor_state
         BEGIN SELECT RAISE(ABORT, 'state writes refused'); END`,
      );
    });
    const error = await rejectionOf(
      stub.deliverTo("counter", batchOf("counter", name, [inc(2, 100)])),
    );
    expect(error.message).toMatch(/state writes refused/);
    expect(await stub.snapshot("counter")).toEqual({ state: { total: 5, seen: 1 }, checkpoint: 1 });
    const stored = await runInDurableObject(stub, (_instance, state) => {
      state.storage.sql.exec("DROP TRIGGER refuse_state");
      return state.storage.sql
        .exec<{ state: string; checkpoint: number }>(
          "SELECT state, checkpoint FROM processor_state WHERE processor = 'counter'",
        )
        .one();
    });
    expect({ state: JSON.parse(stored.state), checkpoint: stored.checkpoint }).toEqual({
      state: { total: 5, seen: 1 },
      checkpoint: 1,
    });
    // Redelivered, the batch is reduced once.
    expect(await stub.deliverTo("counter", batchOf("counter", name, [inc(2, 100)]))).toEqual({
      ackOffset: 2,
    });
    expect(await stub.snapshot("counter")).toEqual({
      state: { total: 105, seen: 2 },
      checkpoint: 2,
    });
  });

  it("an unknown processor in the subscription key is refused without touching state", async () => {
    const { name, stub } = newHost("unknown");
    const error = await rejectionOf(stub.deliverTo("nope", batchOf("nope", name, [inc(1, 1)])));
    expect(error.message).toMatch(/no processor named "nope"/);
    expect(await stub.snapshot("counter")).toEqual({
      state: { total: 0, seen: 0 },
      checkpoint: 0,
    });
  });
});

// ---- serialisation, failure, blocking and background work ------------------------------

describe("batches of one processor are serialised", () => {
  it("a second delivery waits for the first, which is blocked on a promise", async () => {
    const { name, stub } = newHost("serial");
    let firstDone = false;
    let secondDone = false;
    const first = stub
      .deliverTo("gate", batchOf("gate", name, [step(1, "s1", "block")]))
      .finally(() => {
        firstDone = true;
      });
    await waitFor(async () => (await stub.effects()).some((e) => e.kind === "block:s1"));
    const second = stub
      .deliverTo("gate", batchOf("gate", name, [step(2, "s2", "none")]))
      .finally(() => {
        secondDone = true;
      });
    // Give the second delivery every chance to (wrongly) overtake the first: an absence,
    // so there is no condition to await.
    await pause(300);
    expect(firstDone).toBe(false);
    expect(secondDone).toBe(false);
    expect((await stub.effects()).map((e) => e.kind)).toEqual(["block:s1"]);
    expect((await stub.snapshot("gate")).checkpoint).toBe(0);

    await stub.releaseGate("s1");
    expect(await first).toEqual({ ackOffset: 1 });
    expect(await second).toEqual({ ackOffset: 2 });
    expect((await stub.effects()).map((e) => e.kind)).toEqual(["block:s1", "none:s2"]);
    expect(await stub.snapshot("gate")).toEqual({ state: { steps: ["s1", "s2"] }, checkpoint: 2 });
  });

  it("a failed batch does not stop the next one, and writes nothing", async () => {
    const { name, stub } = newHost("serial-fail");
    await stub.failNext("gate", 1);
    const first = stub.deliverTo("gate", batchOf("gate", name, [step(1, "f1", "flaky")]));
    const second = stub.deliverTo("gate", batchOf("gate", name, [step(1, "f1", "flaky")]));
    expect((await rejectionOf(first)).message).toMatch(/gate failing on purpose at offset 1/);
    expect(await second).toEqual({ ackOffset: 1 });
    expect(await stub.snapshot("gate")).toEqual({ state: { steps: ["f1"] }, checkpoint: 1 });
  });
});

describe("blocking work", () => {
  it("blocking work added by blocking work also holds the checkpoint", async () => {
    // BUG: ProcessorHost#process waits for blocking work with
    //   for (let settled = 0; settled < blocking.length; settled = blocking.length)
    //     await Promise.all(blocking.slice(settled));
    // The update runs after the await, so `settled` jumps to the length *including* work
    // pushed during the await, and that work is never awaited: the checkpoint is committed
    // while it still runs (and its failure no longer fails the batch). Fix: remember the
    // length sliced, e.g. `for (let i = 0; i < blocking.length; ) { const n = blocking.length;
    // await Promise.all(blocking.slice(i, n)); i = n; }`.
    const { name, stub } = newHost("nested");
    let done = false;
    const delivery = stub
      .deliverTo("gate", batchOf("gate", name, [step(1, "n1", "nested")]))
      .finally(() => {
        done = true;
      });
    await waitFor(async () => (await stub.effects()).some((e) => e.kind === "nested:n1"));
    await stub.releaseGate("n1/outer");
    await waitFor(async () => (await stub.effects()).some((e) => e.kind === "nested-inner:n1"));
    // The checkpoint must NOT be committed while the inner work runs: an absence, so give a
    // wrong commit the time to happen.
    await pause(200);
    const held = { done, checkpoint: (await stub.snapshot("gate")).checkpoint };
    await stub.releaseGate("n1/inner");
    expect(await delivery).toEqual({ ackOffset: 1 });
    expect(held).toEqual({ done: false, checkpoint: 0 });
  });
});

describe("failures and redelivery through a real subscription", () => {
  it("a failed batch is not checkpointed and is redelivered until it succeeds", async () => {
    const stream = await newStream("redeliver");
    const host = newHost("redeliver");
    await host.stub.subscribe("gate", stream.name, host.name, "beginning");
    await stream.stub.append({ type: "test/stepped", payload: { id: "ok", action: "none" } });
    await waitFor(caughtUp(stream.stub, "gate", host.name));
    const before = await host.stub.snapshot("gate");
    expect(before.state).toEqual({ steps: ["ok"] });

    // Failing until told otherwise, so that the automatic retry cannot race the checks below.
    await host.stub.failNext("gate", 1_000);
    const flaky = await stream.stub.append({
      type: "test/stepped",
      payload: { id: "flaky", action: "flaky" },
    });
    await waitFor(async () => (await subscription(stream.stub, "gate", host.name)).attempts > 0);
    const failing = await subscription(stream.stub, "gate", host.name);
    expect(failing.status).toBe("failing");
    expect(failing.lastError).toMatch(/gate failing on purpose at offset/);
    expect(failing.cursor).toBeLessThan(flaky.offset);
    // Nothing of the failed batch was written.
    expect(await host.stub.snapshot("gate")).toEqual(before);

    await host.stub.failNext("gate", 0);
    await pumpUntil(stream.stub, caughtUp(stream.stub, "gate", host.name));
    const after = await host.stub.snapshot("gate");
    expect(after.state).toEqual({ steps: ["ok", "flaky"] });
    expect(after.checkpoint).toBeGreaterThanOrEqual(flaky.offset);
    // The hook ran once per attempt (failed ones, then the redelivery), the reduction once.
    const flakyEffects = (await host.stub.effects()).filter((e) => e.kind === "flaky:flaky");
    expect(flakyEffects.length).toBeGreaterThanOrEqual(2);
    expect(new Set(flakyEffects.map((e) => e.offset))).toEqual(new Set([flaky.offset]));
    expect((await subscription(stream.stub, "gate", host.name)).status).toBe("active");
  });

  it("blockProcessorWhile holds the checkpoint until its promise settles", async () => {
    const stream = await newStream("block");
    const host = newHost("block");
    await host.stub.subscribe("gate", stream.name, host.name, "beginning");
    const blocked = await stream.stub.append({
      type: "test/stepped",
      payload: { id: "b1", action: "block" },
    });
    await waitFor(async () => (await host.stub.effects()).some((e) => e.kind === "block:b1"));
    // An absence (no checkpoint before the promise settles): give a wrong one the time.
    await pause(200);
    // The hook has returned, but the checkpoint and the stream's cursor wait for the promise.
    expect((await host.stub.snapshot("gate")).checkpoint).toBeLessThan(blocked.offset);
    expect((await subscription(stream.stub, "gate", host.name)).cursor).toBeLessThan(
      blocked.offset,
    );

    await host.stub.releaseGate("b1");
    await waitFor(caughtUp(stream.stub, "gate", host.name));
    expect(await host.stub.snapshot("gate")).toEqual({
      state: { steps: ["b1"] },
      checkpoint: blocked.offset,
    });
  });

  it("a failing blockProcessorWhile promise fails the batch, which is redelivered", async () => {
    const stream = await newStream("block-fail");
    const host = newHost("block-fail");
    await host.stub.subscribe("gate", stream.name, host.name, "beginning");
    const blocked = await stream.stub.append({
      type: "test/stepped",
      payload: { id: "b2", action: "block" },
    });
    await waitFor(async () => (await host.stub.effects()).some((e) => e.kind === "block:b2"));
    await host.stub.rejectGate("b2", "blocking work exploded");
    await waitFor(async () => (await subscription(stream.stub, "gate", host.name)).attempts > 0);
    const failing = await subscription(stream.stub, "gate", host.name);
    expect(failing.status).toBe("failing");
    expect(failing.lastError).toMatch(/blocking work exploded/);
    expect(await host.stub.snapshot("gate")).toEqual({ state: { steps: [] }, checkpoint: 0 });

    // The next attempt's gate is released ahead of time: the redelivery succeeds.
    await host.stub.releaseGate("b2");
    await pumpUntil(stream.stub, caughtUp(stream.stub, "gate", host.name));
    const after = await host.stub.snapshot("gate");
    expect(after.state).toEqual({ steps: ["b2"] });
    // The redelivered batch also covers the subscriber-failed event (filtered out).
    expect(after.checkpoint).toBeGreaterThanOrEqual(blocked.offset);
    const kinds = (await eventsOf(stream.stub)).map((e) => e.type);
    expect(kinds.filter((t) => t === "stream/subscriber-failed")).toHaveLength(1);
    expect(kinds.filter((t) => t === "stream/subscriber-recovered")).toHaveLength(1);
  });

  it("runInBackground does not hold the checkpoint, and its failure is only logged", async () => {
    const errors = vi.spyOn(console, "error");
    const stream = await newStream("background");
    const host = newHost("background");
    await host.stub.subscribe("gate", stream.name, host.name, "beginning");
    const bg = await stream.stub.append({
      type: "test/stepped",
      payload: { id: "g1", action: "background" },
    });
    // The gate is still pending, yet the batch is checkpointed and acknowledged.
    await waitFor(caughtUp(stream.stub, "gate", host.name));
    expect(await host.stub.snapshot("gate")).toEqual({
      state: { steps: ["g1"] },
      checkpoint: bg.offset,
    });

    await host.stub.rejectGate("g1", "background work exploded");
    await waitFor(() =>
      errors.mock.calls.some((args) =>
        args.some(
          (a) =>
            typeof a === "string" &&
            a.includes("processor background work failed") &&
            a.includes("background work exploded"),
        ),
      ),
    );
    const logged = errors.mock.calls
      .flat()
      .find((a) => typeof a === "string" && a.includes("background work exploded")) as string;
    expect(JSON.parse(logged)).toMatchObject({
      processor: "gate",
      stream: stream.path,
      offset: bg.offset,
    });
    // No redelivery, no failure visible on the subscription.
    const sub = await subscription(stream.stub, "gate", host.name);
    expect(sub).toMatchObject({ status: "active", attempts: 0, lag: 0 });
    expect((await host.stub.effects()).filter((e) => e.kind === "background:g1")).toHaveLength(1);
    expect((await eventsOf(stream.stub)).some((e) => e.type === "stream/subscriber-failed")).toBe(
      false,
    );
  });
});

// ---- anchor and obligations -------------------------------------------------------------

describe("side-effect anchor", () => {
  it("events before the subscription are reduced without side effects; later ones fire", async () => {
    const stream = await newStream("anchor");
    const host = newHost("anchor");
    const early = await stream.stub.appendBatch([
      { type: "test/incremented", payload: { by: 1 } },
      { type: "test/noted", payload: { text: "x" } },
      { type: "test/incremented", payload: { by: 2 } },
    ]);
    await host.stub.subscribe("counter", stream.name, host.name, "beginning");
    const sub = await subscription(stream.stub, "counter", host.name);
    expect(sub.anchorOffset).toBe(early.at(-1)!.offset + 1);
    const late = await stream.stub.appendBatch([
      { type: "test/incremented", payload: { by: 4 } },
      { type: "test/incremented", payload: { by: 8 } },
    ]);
    await waitFor(caughtUp(stream.stub, "counter", host.name));
    expect((await host.stub.snapshot("counter")).state).toEqual({ total: 15, seen: 4 });
    expect((await host.stub.effects()).map((e) => e.offset)).toEqual(late.map((e) => e.offset));
  });

  it("startAt now: only events after the subscription are reduced (and fire)", async () => {
    const stream = await newStream("anchor-now");
    const host = newHost("anchor-now");
    await stream.stub.append({ type: "test/incremented", payload: { by: 100 } });
    await host.stub.subscribe("counter", stream.name, host.name, "now");
    const late = await stream.stub.append({ type: "test/incremented", payload: { by: 1 } });
    await waitFor(caughtUp(stream.stub, "counter", host.name));
    expect((await host.stub.snapshot("counter")).state).toEqual({ total: 1, seen: 1 });
    expect((await host.stub.effects()).map((e) => e.offset)).toEqual([late.offset]);
  });

  it("a trigger appended before the subscription is honoured once after subscribing", async () => {
    const stream = await newStream("obligation");
    const host = newHost("obligation");
    await stream.stub.append({ type: "test/triggered", payload: { job: "j1" } });
    await host.stub.subscribe("obligation", stream.name, host.name, "beginning");
    const handled = async (job: string) =>
      (await eventsOf(stream.stub)).filter(
        (e) => e.type === "test/handled" && (e.payload as { job: string }).job === job,
      );
    await waitFor(async () => (await handled("j1")).length > 0);
    await waitFor(caughtUp(stream.stub, "obligation", host.name));
    expect(await handled("j1")).toHaveLength(1);
    expect((await host.stub.snapshot("obligation")).state).toEqual({ pending: [] });

    // A later trigger is handled too, and j1 is not handled again.
    await stream.stub.append({ type: "test/triggered", payload: { job: "j2" } });
    await waitFor(async () => (await handled("j2")).length > 0);
    await waitFor(caughtUp(stream.stub, "obligation", host.name));
    expect(await handled("j1")).toHaveLength(1);
    expect(await handled("j2")).toHaveLength(1);
    expect((await host.stub.snapshot("obligation")).state).toEqual({ pending: [] });
  });
});

// ---- several processors, self-appends, invalid payloads ---------------------------------

describe("two processors on one host", () => {
  it("keep independent state and checkpoints", async () => {
    const stream = await newStream("two");
    const host = newHost("two");
    await host.stub.subscribe("counter", stream.name, host.name, "beginning");
    await host.stub.subscribe("gate", stream.name, host.name, "beginning");
    const blocked = await stream.stub.append({
      type: "test/stepped",
      payload: { id: "hold", action: "block" },
    });
    const incs = await stream.stub.appendBatch([
      { type: "test/incremented", payload: { by: 3 } },
      { type: "test/incremented", payload: { by: 4 } },
    ]);
    // The counter catches up while the gate is blocked on its first batch.
    await waitFor(async () => (await host.stub.snapshot("counter")).checkpoint >= incs[1]!.offset);
    expect((await host.stub.snapshot("counter")).state).toEqual({ total: 7, seen: 2 });
    expect(await host.stub.snapshot("gate")).toEqual({ state: { steps: [] }, checkpoint: 0 });

    await host.stub.releaseGate("hold");
    await waitFor(caughtUp(stream.stub, "gate", host.name));
    await waitFor(caughtUp(stream.stub, "counter", host.name));
    const gate = await host.stub.snapshot("gate");
    expect(gate.state).toEqual({ steps: ["hold"] });
    expect(gate.checkpoint).toBeGreaterThanOrEqual(blocked.offset);
    expect((await host.stub.snapshot("counter")).state).toEqual({ total: 7, seen: 2 });
  });

  it("binds a processor to one stream and refuses a second one", async () => {
    // Offsets, and so checkpoints, are per stream: a processor consumes exactly one stream
    // (register another processor for a second stream). Deliveries from another stream are
    // refused too, so a forged delivery cannot feed a processor foreign events.
    const a = await newStream("two-streams-a");
    const b = await newStream("two-streams-b");
    const host = newHost("two-streams");
    await a.stub.appendBatch(
      Array.from({ length: 5 }, () => ({ type: "test/incremented", payload: { by: 1 } })),
    );
    await host.stub.subscribe("counter", a.name, host.name, "beginning");
    await waitFor(caughtUp(a.stub, "counter", host.name));
    let refused: unknown = null;
    try {
      await host.stub.subscribe("counter", b.name, host.name, "beginning");
    } catch (error) {
      refused = error;
    }
    expect(String(refused)).toContain(`consumes ${a.name}`);
    let forged: unknown = null;
    try {
      await host.stub.deliverTo("counter", {
        stream: "/elsewhere",
        streamName: b.name,
        subscriptionKey: "counter@TEST_HOSTS/x",
        anchorOffset: 0,
        events: [
          {
            offset: 9,
            type: "test/incremented",
            payload: { by: 100 },
            createdAt: new Date().toISOString(),
          },
        ],
        nextOffset: 10,
      });
    } catch (error) {
      forged = error;
    }
    expect(String(forged)).toContain(`consumes ${a.name}`);
    expect((await host.stub.snapshot("counter")).state.total).toBe(5);
  });
});

describe("a processor appending to the stream it consumes", () => {
  const pongsOf = async (stream: StreamClient) =>
    (await eventsOf(stream))
      .filter((e) => e.type === "test/ponged")
      .map((e) => (e.payload as { n: number }).n);

  it("ping → pong: no deadlock, exactly one pong per ping", async () => {
    const stream = await newStream("ping");
    const host = newHost("ping");
    await host.stub.subscribe("ping", stream.name, host.name, "beginning");
    await stream.stub.appendBatch([1, 2, 3].map((n) => ({ type: "test/pinged", payload: { n } })));
    await stream.stub.append({ type: "test/pinged", payload: { n: 4 } });
    await waitFor(async () => (await pongsOf(stream.stub)).length >= 4);
    await waitFor(caughtUp(stream.stub, "ping", host.name));
    expect((await pongsOf(stream.stub)).sort()).toEqual([1, 2, 3, 4]);
    expect((await host.stub.snapshot("ping")).state).toEqual({ pings: 4 });
    // Each pong carries the idempotency key derived from its ping.
    const events = await eventsOf(stream.stub);
    for (const pong of events.filter((e) => e.type === "test/ponged")) {
      const ping = events.find(
        (e) =>
          e.type === "test/pinged" &&
          (e.payload as { n: number }).n === (pong.payload as { n: number }).n,
      )!;
      expect(pong.idempotencyKey).toBe(`ping/pong@${ping.offset}`);
    }
  });

  it("a batch redelivered after its pong was appended does not pong twice", async () => {
    const stream = await newStream("ping-redeliver");
    const host = newHost("ping-redeliver");
    await host.stub.subscribe("ping", stream.name, host.name, "beginning");
    await host.stub.failNext("ping", 1_000);
    await stream.stub.append({ type: "test/pinged", payload: { n: 7 } });
    // Every attempt appends the pong, then fails; let it be redelivered a few times.
    await pumpUntil(
      stream.stub,
      async () => (await subscription(stream.stub, "ping", host.name)).attempts >= 3,
    );
    expect(await pongsOf(stream.stub)).toEqual([7]);
    expect((await host.stub.snapshot("ping")).state).toEqual({ pings: 0 });

    await host.stub.failNext("ping", 0);

    await pumpUntil(stream.stub, caughtUp(stream.stub, "ping", host.name));
    expect((await host.stub.snapshot("ping")).state).toEqual({ pings: 1 });
    expect(await pongsOf(stream.stub)).toEqual([7]);
    expect((await subscription(stream.stub, "ping", host.name)).status).toBe("active");
  });
});

describe("invalid consumed payloads", () => {
  it("fail the batch with an error naming the offset and schema path; nothing is written", async () => {
    const stream = await newStream("invalid");
    const host = newHost("invalid");
    await host.stub.subscribe("counter", stream.name, host.name, "beginning");
    await stream.stub.append({ type: "test/incremented", payload: { by: 1 } });
    await waitFor(caughtUp(stream.stub, "counter", host.name));
    const before = await host.stub.snapshot("counter");

    const bad = await stream.stub.appendBatch([
      { type: "test/incremented", payload: { by: 5 } },
      { type: "test/incremented", payload: { by: "five" } },
    ]);
    await waitFor(async () => (await subscription(stream.stub, "counter", host.name)).attempts > 0);
    const sub = await subscription(stream.stub, "counter", host.name);
    expect(sub.status).not.toBe("active");
    expect(sub.lastError).toContain(`event ${bad[1]!.offset}`);
    expect(sub.lastError).toMatch(/payload invalid at by/);
    // The failing batch wrote nothing; its retries carry one event at a time, so the valid
    // event is reduced (exactly once) on its own and the invalid one is where it parks.
    await pumpUntil(
      stream.stub,
      async () => (await subscription(stream.stub, "counter", host.name)).status === "parked",
    );
    expect(await subscription(stream.stub, "counter", host.name)).toMatchObject({
      stuckOffset: bad[1]!.offset,
      cursor: bad[0]!.offset,
    });
    expect(await host.stub.snapshot("counter")).toEqual({
      state: { total: before.state.total + 5, seen: before.state.seen + 1 },
      checkpoint: bad[0]!.offset,
    });
  });

  it("a direct delivery with an invalid payload rejects and leaves the checkpoint", async () => {
    const { name, stub } = newHost("invalid-direct");
    await stub.deliverTo("counter", batchOf("counter", name, [inc(1, 1)]));
    const error = await rejectionOf(
      stub.deliverTo("counter", batchOf("counter", name, [inc(2, 1), [3, "test/incremented", {}]])),
    );
    expect(error.message).toMatch(/event 3 \(test\/incremented\) payload invalid at by/);
    expect(await stub.snapshot("counter")).toEqual({ state: { total: 1, seen: 1 }, checkpoint: 1 });
  });
});
