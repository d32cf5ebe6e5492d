/**
 * Poison events and stuck subscribers: after DELIVERY_MAX_ATTEMPTS (6 in vitest.config.ts)
 * failed attempts a subscription is parked — `stream/subscriber-parked`, status `parked` with
 * the stuck offset, no more deliveries or alarms for it — while appends and other
 * subscribers carry on. Resume retries from the cursor; skip moves it past exactly the stuck
 * event; both are events naming who did it, over HTTP (tenant and admin) and RPC, and the
 * parked state survives eviction.
 */
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { EventInput, StreamEvent } from "../../src/streams/messages";
import type { SubscriptionStatus } from "../../src/streams/stream-rpc";
import { newSubscriber, type SubscriberStub, subscribeRecorder, uid } from "../support/fixtures";
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "../support/rpc";
import { pumpUntil, type StreamClient, streamClient } from "../support/streams";
import { waitFor } from "../support/wait";

const MAX_ATTEMPTS = 6;
const ANONYMOUS = "tenant:default/key:none";
const ev = (type: string, n: number): EventInput => ({ type, payload: { n } });

const streamStub = streamClient;

async function newStream(label: string) {
  const path = `/park/${label}-${uid()}`;
  const name = `default:${path}`;
  await streamStub(name).create(name, path);
  return { path, name, stub: streamStub(name) };
}

async function subscribe(stream: StreamClient, subscriber: string, eventTypes = ["test/a"]) {
  return (await subscribeRecorder(stream, subscriber, eventTypes)).key;
}

async function status(stream: StreamClient, key: string): Promise<SubscriptionStatus> {
  const sub = (await stream.listSubscriptions()).find((s) => s.key === key);
  if (!sub) throw new Error(`no subscription ${key}`);
  return sub;
}

/** How many deliveries the subscriber has refused so far (it counts down from failNext). */
async function failuresLeft(subscriber: SubscriberStub): Promise<number> {
  return runInDurableObject(
    subscriber,
    (_: unknown, state: DurableObjectState) =>
      state.storage.sql.exec<{ v: number }>("SELECT v FROM settings WHERE k = 'failures'").one().v,
  );
}

async function received(subscriber: SubscriberStub): Promise<number[]> {
  return (await subscriber.batches()).flatMap((b) => b.events.map((e) => e.offset));
}

async function eventsOf(stream: StreamClient, type: string): Promise<StreamEvent[]> {
  const { events } = await stream.read({ after: 0, limit: 10_000 });
  return (events as StreamEvent[]).filter((e) => e.type === type);
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to reject");
}

const call = (path: string, init?: RequestInit) =>
  exports.default.fetch(`http://streams.test${path}`, init);

const action = (
  what: "resume" | "skip",
  stream: string,
  key: string,
  body?: unknown,
  prefix = "/v1",
  headers: Record<string, string> = {},
) =>
  call(
    `${prefix}/subscriptions/${what}?stream=${encodeURIComponent(stream)}&key=${encodeURIComponent(key)}`,
    {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    },
  );

/**
 * A subscriber that fails every delivery, subscribed to `test/a`, with three events appended
 * in one batch (a, b, a): the first attempt carries both `test/a` events, the retries only
 * the first, which is where it parks.
 */
async function parkedSetup(label: string) {
  const stream = await newStream(label);
  const sub = newSubscriber(label);
  await sub.stub.failNext(1_000);
  const key = await subscribe(stream.stub, sub.name);
  const appended = await stream.stub.appendBatch([
    ev("test/a", 1),
    ev("test/b", 2),
    ev("test/a", 3),
  ]);
  await pumpUntil(stream.stub, async () => (await status(stream.stub, key)).status === "parked");
  return { stream, sub, key, appended: appended as StreamEvent[] };
}

describe("parking", () => {
  it("parks after the configured number of failures, with an event and its status, and stops delivering", async () => {
    const { stream, sub, key, appended } = await parkedSetup("parks");
    const stuck = appended[0]!.offset;
    const st = await status(stream.stub, key);
    expect(st).toMatchObject({
      status: "parked",
      attempts: MAX_ATTEMPTS,
      stuckOffset: stuck,
      stuckThrough: stuck,
      cursor: stuck - 1,
      nextRetryAt: null,
      lastErrorRetryable: true,
    });
    expect(st.lastError).toMatch(/subscriber failing on purpose/);
    expect(await failuresLeft(sub.stub)).toBe(1_000 - MAX_ATTEMPTS);

    const parked = await eventsOf(stream.stub, "stream/subscriber-parked");
    expect(parked).toHaveLength(1);
    expect(parked[0]!.payload).toMatchObject({
      key,
      attempts: MAX_ATTEMPTS,
      retryable: true,
      stuckOffset: stuck,
      stuckThrough: stuck,
      cursor: stuck - 1,
    });
    expect((parked[0]!.payload as { error: string }).error).toMatch(/failing on purpose/);
    // Failing is reported once, then parking once (not an event per attempt).
    expect(await eventsOf(stream.stub, "stream/subscriber-failed")).toHaveLength(1);

    // No alarm is kept for it, and neither an alarm nor new events make it deliver again.
    await runDurableObjectAlarm(stream.stub);
    await stream.stub.appendBatch([ev("test/a", 4)]);
    await runDurableObjectAlarm(stream.stub);
    expect(
      await runInDurableObject(stream.stub, (_: unknown, state: DurableObjectState) =>
        state.storage.getAlarm(),
      ),
    ).toBeNull();
    expect(await failuresLeft(sub.stub)).toBe(1_000 - MAX_ATTEMPTS);
    const after = await status(stream.stub, key);
    expect(after).toMatchObject({ status: "parked", stuckOffset: stuck, cursor: stuck - 1 });
    expect(after.lag).toBeGreaterThan(st.lag);
  });

  it("appends and other subscribers carry on while one is parked", async () => {
    const { stream, key } = await parkedSetup("isolated");
    const good = newSubscriber("isolated-good");
    const goodKey = await subscribe(stream.stub, good.name);
    const later = (await stream.stub.appendBatch([
      ev("test/a", 4),
      ev("test/a", 5),
    ])) as StreamEvent[];
    await waitFor(async () => (await status(stream.stub, goodKey)).lag === 0);
    const all = (await stream.stub.read({ after: 0, limit: 1_000 })).events as StreamEvent[];
    expect(await received(good.stub)).toEqual(
      all.filter((e) => e.type === "test/a").map((e) => e.offset),
    );
    expect((await received(good.stub)).slice(-2)).toEqual(later.map((e) => e.offset));
    expect((await status(stream.stub, key)).status).toBe("parked");
  });
});

describe("resume", () => {
  it("retries from the cursor: the stuck event first, then everything after it, nothing lost", async () => {
    const { stream, sub, key, appended } = await parkedSetup("resume");
    const later = (await stream.stub.appendBatch([ev("test/a", 4)])) as StreamEvent[];
    await sub.stub.failNext(0);

    const res = await action("resume", stream.path, key);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { subscription: SubscriptionStatus };
    expect(body.subscription).toMatchObject({ key, status: "failing", attempts: 0 });
    expect(body.subscription.stuckOffset).toBeNull();

    await pumpUntil(stream.stub, async () => {
      const st = await status(stream.stub, key);
      return st.status === "active" && st.lag === 0;
    });
    const wanted = [...appended, ...later].filter((e) => e.type === "test/a").map((e) => e.offset);
    expect(await received(sub.stub)).toEqual(wanted);
    expect(await status(stream.stub, key)).toMatchObject({ lastError: null, attempts: 0 });

    const [resumed] = await eventsOf(stream.stub, "stream/subscriber-resumed");
    expect(resumed!.payload).toEqual({ key, cursor: appended[0]!.offset - 1, by: ANONYMOUS });
    expect(await eventsOf(stream.stub, "stream/subscriber-recovered")).toHaveLength(1);
  });

  it("a resumed subscription that keeps failing is parked again after a fresh budget", async () => {
    const { stream, sub, key } = await parkedSetup("reparks");
    expect((await action("resume", stream.path, key)).status).toBe(200);
    await pumpUntil(stream.stub, async () => (await status(stream.stub, key)).status === "parked");
    expect(await failuresLeft(sub.stub)).toBe(1_000 - 2 * MAX_ATTEMPTS);
    expect(await eventsOf(stream.stub, "stream/subscriber-parked")).toHaveLength(2);
  });

  it("parked state survives eviction, and resuming after it delivers", async () => {
    const { stream, sub, key, appended } = await parkedSetup("evicted");
    await evictDurableObject(stream.stub);
    const revived = streamStub(stream.name);
    expect(await status(revived, key)).toMatchObject({
      status: "parked",
      stuckOffset: appended[0]!.offset,
    });
    // The fresh instance's start-up kick and its alarm leave a parked subscription alone.
    await runDurableObjectAlarm(revived);
    expect(await failuresLeft(sub.stub)).toBe(1_000 - MAX_ATTEMPTS);

    await sub.stub.failNext(0);
    expect((await action("resume", stream.path, key)).status).toBe(200);
    await evictDurableObject(revived);
    const again = streamStub(stream.name);
    await pumpUntil(again, async () => (await status(again, key)).lag === 0);
    // An eviction may cost a redelivery (at least once), never an event.
    expect([...new Set(await received(sub.stub))]).toEqual(
      appended.filter((e) => e.type === "test/a").map((e) => e.offset),
    );
  });
});

describe("skip", () => {
  it("moves the cursor past exactly the stuck event, names it and who skipped it, and delivers the rest", async () => {
    const { stream, sub, key, appended } = await parkedSetup("skip");
    const [a1, , a3] = appended;
    const later = (await stream.stub.appendBatch([ev("test/a", 4)])) as StreamEvent[];
    await sub.stub.failNext(0);

    const res = await action("skip", stream.path, key, { offset: a1!.offset, reason: "poison" });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { skipped: number[]; subscription: SubscriptionStatus };
    expect(body.skipped).toEqual([a1!.offset]);
    expect(body.subscription).toMatchObject({ cursor: a1!.offset, stuckOffset: null });

    await pumpUntil(stream.stub, async () => (await status(stream.stub, key)).lag === 0);
    // The stuck event is the only one never delivered; the one after it in the same batch is.
    expect(await received(sub.stub)).toEqual([a3!.offset, later[0]!.offset]);
    expect((await status(stream.stub, key)).status).toBe("active");

    const skipped = await eventsOf(stream.stub, "stream/subscriber-skipped");
    expect(skipped.map((e) => e.payload)).toEqual([
      {
        key,
        offsets: [a1!.offset],
        from: a1!.offset - 1,
        cursor: a1!.offset,
        by: ANONYMOUS,
        reason: "poison",
      },
    ]);
  });

  it("without an offset skips the stuck event; the dev key is named as the principal", async () => {
    const path = `/park/dev-${uid()}`;
    const name = `dev:${path}`;
    const stream = streamStub(name);
    await stream.create(name, path);
    const sub = newSubscriber("dev");
    await sub.stub.failNext(1_000);
    const key = await subscribe(stream, sub.name);
    const [a] = (await stream.appendBatch([ev("test/a", 1)])) as StreamEvent[];
    await pumpUntil(stream, async () => (await status(stream, key)).status === "parked");
    const res = await action("skip", path, key, undefined, "/v1", {
      authorization: "Bearer das_dev_local_development_key_0000",
    });
    expect(res.status).toBe(200);
    const [skipped] = await eventsOf(stream, "stream/subscriber-skipped");
    expect(skipped!.payload).toMatchObject({ offsets: [a!.offset], by: "tenant:dev/key:dev" });
    expect((await status(stream, key)).status).toBe("active");
  });
});

describe("resume and skip refuse what they cannot do, and change nothing", () => {
  it("404 for an unknown subscription, 409 when it is not parked or is stuck elsewhere", async () => {
    const { stream, key, appended } = await parkedSetup("errors");
    const active = newSubscriber("errors-active");
    const activeKey = await subscribe(stream.stub, active.name, ["test/b"]);
    await waitFor(async () => (await status(stream.stub, activeKey)).lag === 0);
    const before = (await stream.stub.read({ after: 0, limit: 1_000 })).events.length;

    const cases: [Response, number, string][] = [
      [await action("resume", stream.path, "raw/nobody"), 404, "not_found"],
      [await action("skip", stream.path, "raw/nobody"), 404, "not_found"],
      [await action("resume", `/park/no-stream-${uid()}`, key), 404, "not_found"],
      [await action("resume", stream.path, activeKey), 409, "conflict"],
      [await action("skip", stream.path, activeKey), 409, "conflict"],
      [await action("skip", stream.path, key, { offset: appended[2]!.offset }), 409, "conflict"],
      [await action("skip", stream.path, key, { offset: "one" }), 400, "validation_failed"],
      [await action("resume", stream.path, "bad key with spaces"), 400, "validation_failed"],
    ];
    for (const [res, code, errorCode] of cases) {
      expect(res.status).toBe(code);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe(errorCode);
      expect(body.error.message.length).toBeGreaterThan(0);
    }
    expect((await stream.stub.read({ after: 0, limit: 1_000 })).events.length).toBe(before);
    expect(await status(stream.stub, key)).toMatchObject({
      status: "parked",
      stuckOffset: appended[0]!.offset,
    });
  });

  it("another tenant's subscription reads as 404", async () => {
    const { stream, key } = await parkedSetup("tenant");
    const res = await action("resume", stream.path, key, undefined, "/v1", {
      authorization: "Bearer das_dev_local_development_key_0000",
    });
    expect(res.status).toBe(404);
    await res.body?.cancel();
    expect((await status(stream.stub, key)).status).toBe("parked");
  });
});

describe("admin and RPC doors", () => {
  it("the admin routes resume a tenant's subscription as `admin`", async () => {
    const { stream, sub, key } = await parkedSetup("admin");
    await sub.stub.failNext(0);
    const unauthorized = await action(
      "resume",
      stream.path,
      key,
      undefined,
      "/admin/tenants/default",
    );
    expect(unauthorized.status).toBe(401);
    await unauthorized.body?.cancel();
    const res = await action("resume", stream.path, key, undefined, "/admin/tenants/default", {
      authorization: "Bearer dev-admin-token",
    });
    expect(res.status).toBe(200);
    await res.body?.cancel();
    const [resumed] = await eventsOf(stream.stub, "stream/subscriber-resumed");
    expect((resumed!.payload as { by: string }).by).toBe("admin");
    await pumpUntil(stream.stub, async () => (await status(stream.stub, key)).lag === 0);
  });

  it("resumeSubscription and skipSubscription over RPC validate the principal", async () => {
    const { stream, key, appended } = await parkedSetup("rpc");
    expect(String(await rejectionOf(stream.stub.resumeSubscription(key, "somebody")))).toMatch(
      /principal/,
    );
    expect((await status(stream.stub, key)).status).toBe("parked");
    const result = await stream.stub.skipSubscription(key, "tenant:default/key:0123abcd", {
      offset: appended[0]!.offset,
    });
    expect(result.skipped).toEqual([appended[0]!.offset]);
    expect(String(await rejectionOf(stream.stub.resumeSubscription(key, "admin")))).toMatch(
      /not parked/,
    );
  });
});
