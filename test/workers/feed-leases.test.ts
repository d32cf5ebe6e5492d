/**
 * Self-feeding writers (src/streams/feed-leases.ts): an append that claims a caught-up
 * subscription is not delivered back to it; the writer's acknowledgements (on its next append
 * or in `acknowledgeFeeds`) move the durable cursor; and the lease ends — the delivery then
 * runs from the cursor — on an append without the claim, on release, on `resumeDeliveries`,
 * and when it is not renewed in time (DELIVERY_FEED_LEASE_MS = 1500 in vitest.config.ts).
 */
import { describe, expect, it } from "vitest";
import type { EventInput } from "../../src/streams/messages";
import { newSubscriber, subscribeRecorder, uid } from "../support/fixtures";
import { runDurableObjectAlarm } from "../support/rpc";
import { rpcError, type StreamClient, streamClient } from "../support/streams";
import { pause, waitFor } from "../support/wait";

const x = (n: number): EventInput => ({ type: "x", payload: { n } });

/** A stream with one event delivered to a fresh recorder subscribed to `x`. */
async function caughtUpStream() {
  const path = `/leases/${uid()}`;
  const name = `default:${path}`;
  const stream = streamClient(name);
  await stream.create(name, path);
  const subscriber = newSubscriber("lease");
  const { key } = await subscribeRecorder(stream, subscriber.name, ["x"], "beginning");
  await stream.append(x(0));
  await waitFor(async () => (await status(stream, key)).lag === 0);
  const { anchorOffset } = await status(stream, key);
  const received = async () =>
    (await subscriber.stub.batches()).flatMap((b) => b.events.map((e) => e.offset));
  expect(await received()).toEqual([2]);
  return { stream, key, anchorOffset, received };
}

async function status(stream: StreamClient, key: string) {
  const sub = (await stream.listSubscriptions()).find((s) => s.key === key);
  if (!sub) throw new Error(`no subscription ${key}`);
  return sub;
}

describe("self-feeding writers", () => {
  it("are not delivered what they claim; their acknowledgements move the cursor", async () => {
    const { stream, key, anchorOffset, received } = await caughtUpStream();
    const [first] = await stream.appendBatch([x(1)], { selfFeed: { keys: [key], acks: [] } });
    // The next claimed append acknowledges the first (what the writer's feed processed).
    const [second] = await stream.appendBatch([x(2)], {
      selfFeed: { keys: [key], acks: [{ key, anchorOffset, offset: first!.offset }] },
    });
    expect((await status(stream, key)).cursor).toBe(first!.offset);
    await stream.acknowledgeFeeds({
      acks: [{ key, anchorOffset, offset: second!.offset }],
      release: [],
    });
    expect(await status(stream, key)).toMatchObject({ cursor: second!.offset, lag: 0 });
    // Nothing is delivered afterwards either (a window well inside the lease).
    await pause(300);
    expect(await received()).toEqual([2]);
  });

  it("an append without the claim ends the lease: everything past the cursor is delivered in order", async () => {
    const { stream, key, received } = await caughtUpStream();
    await stream.appendBatch([x(1)], { selfFeed: { keys: [key], acks: [] } });
    await stream.append(x(2));
    await waitFor(async () => (await received()).length === 3);
    expect(await received()).toEqual([2, 3, 4]);
    expect((await status(stream, key)).lag).toBe(0);
  });

  it("a released lease is delivered at once, and so is one ended by resumeDeliveries", async () => {
    const { stream, key, received } = await caughtUpStream();
    await stream.appendBatch([x(1)], { selfFeed: { keys: [key], acks: [] } });
    await stream.acknowledgeFeeds({ acks: [], release: [key] });
    await waitFor(async () => (await received()).length === 2);

    await stream.appendBatch([x(2)], { selfFeed: { keys: [key], acks: [] } });
    await stream.resumeDeliveries();
    await waitFor(async () => (await received()).length === 3);
    expect(await received()).toEqual([2, 3, 4]);
  });

  it("a lease that is not renewed expires, and the alarm delivers", async () => {
    const { stream, key, received } = await caughtUpStream();
    await stream.appendBatch([x(1)], { selfFeed: { keys: [key], acks: [] } });
    expect((await status(stream, key)).lag).toBe(1);
    // The writer goes silent: past the lease (1500 ms), the stream's alarm delivers.
    await pause(1_600);
    await runDurableObjectAlarm(stream);
    await waitFor(async () => (await received()).length === 2);
    expect((await status(stream, key)).lag).toBe(0);
  });

  it("ignores an acknowledgement for another configuration (anchor) of the subscription", async () => {
    const { stream, key, anchorOffset } = await caughtUpStream();
    const [event] = await stream.appendBatch([x(1)], { selfFeed: { keys: [key], acks: [] } });
    await stream.acknowledgeFeeds({
      acks: [{ key, anchorOffset: anchorOffset + 1, offset: event!.offset }],
      release: [],
    });
    expect((await status(stream, key)).cursor).toBe(event!.offset - 1);
  });

  it("never acknowledges past the tail, nor past the tail before a carrying append", async () => {
    const { stream, key, anchorOffset } = await caughtUpStream();
    const [event] = await stream.appendBatch([x(1)], {
      selfFeed: { keys: [key], acks: [{ key, anchorOffset, offset: 99 }] },
    });
    // The ack rode on the append of offset 3: it cannot cover that append itself.
    expect((await status(stream, key)).cursor).toBe(event!.offset - 1);
    await stream.acknowledgeFeeds({ acks: [{ key, anchorOffset, offset: 99 }], release: [] });
    expect((await status(stream, key)).cursor).toBe(event!.offset);
  });

  it("refuses a malformed report or claim and changes nothing", async () => {
    const { stream, key } = await caughtUpStream();
    const before = await status(stream, key);
    const report = { acks: [{ key, anchorOffset: -1, offset: 1 }], release: [] };
    expect((await rpcError(stream.acknowledgeFeeds(report))).code).toBe("validation_failed");
    const claim = { selfFeed: { keys: [""], acks: [] } };
    expect((await rpcError(stream.appendBatch([x(1)], claim))).code).toBe("validation_failed");
    expect(await status(stream, key)).toEqual(before);
    expect((await stream.head()).lastOffset).toBe(2);
  });
});

describe("onlyNew appends", () => {
  it("land whole, or are refused (409) when any key is stored or repeated, changing nothing", async () => {
    const { stream } = await caughtUpStream();
    const keyed = (key: string): EventInput => ({ ...x(1), idempotencyKey: key });
    const stored = await stream.appendBatch([keyed("a"), keyed("b")], { onlyNew: true });
    expect(stored.map((e) => e.offset)).toEqual([3, 4]);
    const before = await stream.head();
    for (const batch of [
      [keyed("c"), keyed("a")], // "a" is stored
      [keyed("d"), keyed("d")], // repeated within the batch
    ]) {
      const error = await rpcError(stream.appendBatch(batch, { onlyNew: true }));
      expect(error.code).toBe("conflict");
    }
    expect(await stream.head()).toEqual(before);
    // Without it, a stored key answers its original as always.
    const [again] = await stream.appendBatch([keyed("a")]);
    expect(again!.offset).toBe(3);
  });
});
