import { describe, expect, it } from "vitest";
import type { ProcessorHost } from "../../src/processors/host";
import type { DeliveryBatch } from "../../src/streams/delivery";
import type { EventInput, StreamEvent } from "../../src/streams/messages";
import { newHost, uid } from "../support/fixtures";
import { runInDurableObject } from "../support/rpc";
import { type StreamClient, streamClient } from "../support/streams";
import { waitFor } from "../support/wait";

async function newStream(label: string) {
  const path = `/lf/${label}-${uid()}`;
  const name = `default:${path}`;
  const stub = streamClient(name);
  await stub.create(name, path);
  return { path, name, stub };
}

const inc = (by: number): EventInput => ({ type: "test/incremented", payload: { by } });
const noted = (text: string): EventInput => ({ type: "test/noted", payload: { text } });

type Host = ReturnType<typeof newHost>;

/** Holds every delivery to the host until the returned function is called. */
async function holdDeliveries(host: Host): Promise<() => Promise<void>> {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  await runInDurableObject(host.stub, (instance: { host: ProcessorHost }) => {
    const original = instance.host.deliver.bind(instance.host);
    instance.host.deliver = async (batch: DeliveryBatch) => {
      await gate;
      return original(batch);
    };
  });
  return async () => {
    release();
    await runInDurableObject(host.stub, (instance: { host: ProcessorHost }) => {
      delete (instance.host as { deliver?: unknown }).deliver;
    });
  };
}

/** Feeds committed events to the host, as its owner does after an append of its own. */
function feed(host: Host, stream: { path: string; name: string }, committed: StreamEvent[]) {
  return runInDurableObject(host.stub, (instance: { host: ProcessorHost }) =>
    instance.host.feed({ stream: stream.path, streamName: stream.name }, committed),
  );
}

/** A counter subscribed to a fresh stream, with one increment delivered the ordinary way. */
async function counterOnStream(label: string) {
  const stream = await newStream(label);
  const host = newHost(label);
  await host.stub.subscribe("counter", stream.name, host.name, "beginning");
  const [first] = await stream.stub.appendBatch([inc(1)]);
  await host.stub.waitForCheckpoint("counter", first!.offset);
  return { stream, host, first: first! };
}

const caughtUp = (stream: StreamClient, hostName: string) => async () =>
  (await stream.listSubscriptions()).find((s) => s.key === `counter@TEST_HOSTS/${hostName}`)
    ?.lag === 0;

const effectOffsets = async (host: Host) =>
  (await host.stub.effects()).filter((e) => e.kind === "processEvent").map((e) => e.offset);

describe("local feed", () => {
  it("reduces an append at once, and the delivery after it changes nothing", async () => {
    const { stream, host, first } = await counterOnStream("fed");
    const release = await holdDeliveries(host);
    const committed = await stream.stub.appendBatch([inc(2), noted("x"), inc(3)]);
    await feed(host, stream, committed);
    const fed = await host.stub.snapshot("counter");
    expect(fed).toEqual({ state: { total: 6, seen: 3 }, checkpoint: committed[2]!.offset });
    expect(await effectOffsets(host)).toEqual([
      first.offset,
      committed[0]!.offset,
      committed[2]!.offset,
    ]);

    // The same events fed again (an idempotent repeat answers the originals) are not reduced.
    await feed(host, stream, committed);
    await release();
    await waitFor(caughtUp(stream.stub, host.name));
    expect(await host.stub.snapshot("counter")).toEqual(fed);
    expect(await effectOffsets(host)).toEqual([
      first.offset,
      committed[0]!.offset,
      committed[2]!.offset,
    ]);
  });

  it("feeds a run that starts after events it was shown but does not consume", async () => {
    const { stream, host } = await counterOnStream("skip");
    const release = await holdDeliveries(host);
    const notes = await stream.stub.appendBatch([noted("a"), noted("b")]);
    await feed(host, stream, notes);
    // Nothing it consumes: no commit, but the host now knows it has seen through them.
    expect((await host.stub.snapshot("counter")).checkpoint).toBeLessThan(notes[0]!.offset);
    const [added] = await stream.stub.appendBatch([inc(5)]);
    await feed(host, stream, [added!]);
    expect(await host.stub.snapshot("counter")).toEqual({
      state: { total: 6, seen: 2 },
      checkpoint: added!.offset,
    });
    await release();
    await waitFor(caughtUp(stream.stub, host.name));
    expect((await effectOffsets(host)).filter((o) => o === added!.offset)).toHaveLength(1);
  });

  it("leaves events after a foreign append to the delivery, which keeps their order", async () => {
    const { stream, host, first } = await counterOnStream("gap");
    const release = await holdDeliveries(host);
    // Someone else appends (not fed to this host), then the host's own append comes back.
    const [foreign] = await stream.stub.appendBatch([inc(10)]);
    const [own] = await stream.stub.appendBatch([inc(100)]);
    await feed(host, stream, [own!]);
    // Not contiguous with what the counter has seen: nothing reduced, nothing run.
    expect(await host.stub.snapshot("counter")).toEqual({
      state: { total: 1, seen: 1 },
      checkpoint: first.offset,
    });
    expect(await effectOffsets(host)).toEqual([first.offset]);

    await release();
    await waitFor(caughtUp(stream.stub, host.name));
    expect(await host.stub.snapshot("counter")).toEqual({
      state: { total: 111, seen: 3 },
      checkpoint: own!.offset,
    });
    expect(await effectOffsets(host)).toEqual([first.offset, foreign!.offset, own!.offset]);
  });

  it("feeds a processor's own appends back to it and to the others on the host", async () => {
    const stream = await newStream("own");
    const host = newHost("own");
    // Held from the start: everything below reaches the processors by local feed only.
    const release = await holdDeliveries(host);
    await host.stub.subscribe("ping", stream.name, host.name, "beginning");
    await host.stub.subscribe("counter", stream.name, host.name, "beginning");
    // The stream's own subscription events, as committed: both processors have now seen them.
    const { events: configured } = await stream.stub.read({ after: 0 });
    await feed(host, stream, configured);
    // The ping is fed (as if the host's owner appended it); its pong, appended by the ping
    // processor through the host, is fed to the counter (which consumes none) and to ping.
    const [ping] = await stream.stub.appendBatch([{ type: "test/pinged", payload: { n: 1 } }]);
    await feed(host, stream, [ping!]);
    expect(await host.stub.snapshot("ping")).toEqual({
      state: { pings: 1 },
      checkpoint: ping!.offset,
    });
    const [extra] = await stream.stub.appendBatch([inc(7)]);
    expect(extra!.offset).toBe(ping!.offset + 2);
    // The pong's feed was queued before the ping's batch ended: the counter has seen through
    // it (it consumes none), so the increment after it is fed.
    await feed(host, stream, [extra!]);
    expect(await host.stub.snapshot("counter")).toEqual({
      state: { total: 7, seen: 1 },
      checkpoint: extra!.offset,
    });
    await release();
    await waitFor(caughtUp(stream.stub, host.name));
    expect((await host.stub.snapshot("counter")).state).toEqual({ total: 7, seen: 1 });
    expect((await host.stub.snapshot("ping")).state).toEqual({ pings: 1 });
    const pongs = (await stream.stub.read({ after: 0 })).events.filter(
      (e) => e.type === "test/ponged",
    );
    expect(pongs).toHaveLength(1);
  });
});
