/**
 * Lease rules for self-feeding writers (src/streams/feed-leases.ts) and the host's side of
 * them (src/processors/local-feed.ts: what an append claims and acknowledges).
 */
import { describe, expect, it } from "vitest";
import { LocalFeedState } from "../../src/processors/local-feed";
import { FeedLeases } from "../../src/streams/feed-leases";
import type { Subscription } from "../../src/streams/subscriptions";

const sub = (key: string, over: Partial<Subscription> = {}): Subscription => ({
  key,
  callable: { kind: "durable-object", binding: "SESSIONS", name: "s", method: "deliver" },
  eventTypes: ["*"],
  startAt: "beginning",
  anchorOffset: 1,
  cursor: 10,
  health: "active",
  attempts: 0,
  lastError: null,
  lastErrorRetryable: null,
  nextRetryAt: null,
  stuckOffset: null,
  stuckThrough: null,
  secret: null,
  ...over,
});

const none = new Set<string>();

describe("FeedLeases", () => {
  it("leases a claimed, caught-up, healthy subscription until leaseMs after the commit", () => {
    const leases = new FeedLeases(() => 100);
    leases.commit([sub("a")], 10, new Set(["a"]), none, 1_000);
    expect(leases.heldUntil("a", 1_050)).toBe(1_100);
    expect(leases.heldUntil("a", 1_100)).toBeNull();
  });

  it("takes no lease for a lagging, failing, parked, in-flight or unclaimed subscription", () => {
    const leases = new FeedLeases(() => 100);
    const claimed = new Set(["lag", "failing", "parked", "out", "retry"]);
    leases.commit(
      [
        sub("lag", { cursor: 9 }),
        sub("failing", { health: "failing" }),
        sub("parked", { health: "parked" }),
        sub("out"),
        sub("retry", { nextRetryAt: 5 }),
        sub("unclaimed"),
      ],
      10,
      claimed,
      new Set(["out"]),
      1_000,
    );
    for (const key of ["lag", "failing", "parked", "out", "retry", "unclaimed"])
      expect(leases.heldUntil(key, 1_001), key).toBeNull();
  });

  it("renews a held lease while its writer lags with acknowledgements, and ends it on a commit without the claim", () => {
    const leases = new FeedLeases(() => 100);
    leases.commit([sub("a")], 10, new Set(["a"]), none, 1_000);
    // Cursor still at 10 while the tail moved to 12: the writer has not acknowledged yet.
    leases.commit([sub("a")], 12, new Set(["a"]), none, 1_050);
    expect(leases.heldUntil("a", 1_120)).toBe(1_150);
    // Another writer's commit: whatever it holds must be delivered.
    leases.commit([sub("a")], 13, none, none, 1_060);
    expect(leases.heldUntil("a", 1_061)).toBeNull();
    // Lagging and no longer leased: a claim cannot take it back.
    leases.commit([sub("a")], 14, new Set(["a"]), none, 1_070);
    expect(leases.heldUntil("a", 1_071)).toBeNull();
  });

  it("release and clear end leases", () => {
    const leases = new FeedLeases(() => 100);
    leases.commit([sub("a"), sub("b")], 10, new Set(["a", "b"]), none, 1_000);
    leases.release(["a"]);
    expect(leases.heldUntil("a", 1_001)).toBeNull();
    expect(leases.heldUntil("b", 1_001)).toBe(1_100);
    leases.clear();
    expect(leases.heldUntil("b", 1_001)).toBeNull();
  });
});

describe("LocalFeedState claims and acknowledgements", () => {
  it("claims only processors whose subscription a delivery has named, and owes what feeds brought", () => {
    const feeds = new LocalFeedState();
    expect(feeds.claim(["agent", "model"])).toBeNull();
    feeds.delivered("agent", "agent@SESSIONS/s", 3);
    feeds.advance("agent", 12);
    feeds.advance("model", 12); // no subscription known: nothing to claim or owe
    expect(feeds.claim(["agent", "model"])).toEqual({
      keys: ["agent@SESSIONS/s"],
      acks: [{ key: "agent@SESSIONS/s", anchorOffset: 3, offset: 12 }],
    });
    // Taken: the next claim owes nothing until another feed.
    expect(feeds.claim(["agent"])).toEqual({ keys: ["agent@SESSIONS/s"], acks: [] });
  });

  it("hands back acknowledgements an append could not carry, unless a later one overtook them", () => {
    const feeds = new LocalFeedState();
    feeds.delivered("agent", "k", 3);
    feeds.advance("agent", 12);
    const taken = feeds.takeAcks(["agent"]);
    feeds.restore(["agent"], taken);
    expect(feeds.takeAcks(["agent"])).toEqual([{ key: "k", anchorOffset: 3, offset: 12 }]);
    feeds.advance("agent", 15);
    feeds.restore(["agent"], taken);
    expect(feeds.takeAcks(["agent"])).toEqual([{ key: "k", anchorOffset: 3, offset: 15 }]);
  });

  it("drops what it owes for an older configuration (a new anchor) and after a reset", () => {
    const feeds = new LocalFeedState();
    feeds.delivered("agent", "k", 3);
    feeds.advance("agent", 12);
    feeds.delivered("agent", "k", 20);
    expect(feeds.takeAcks(["agent"])).toEqual([]);
    feeds.advance("agent", 25);
    feeds.forget("agent");
    expect(feeds.claim(["agent"])).toBeNull();
  });

  it("a skipped run is a gap only when some of it lies past what was seen", () => {
    const feeds = new LocalFeedState();
    const target = { stream: "/s", streamName: "t:/s" };
    const event = (offset: number) => ({
      offset,
      type: "x",
      payload: {},
      metadata: undefined,
      idempotencyKey: undefined,
      createdAt: "2026-12-02T00:00:00.000Z",
    });
    const consumes = new Set(["x"]);
    // Already seen (an idempotent repeat answers the originals): nothing to hand over.
    expect(feeds.plan("p", target, [event(4), event(5)], 5, consumes)).toMatchObject({
      kind: "skip",
      gap: false,
    });
    // Another writer's events (6) lie between: the delivery must bring 6..8.
    expect(feeds.plan("p", target, [event(7), event(8)], 5, consumes)).toMatchObject({
      kind: "skip",
      gap: true,
    });
    expect(feeds.plan("p", target, [event(6)], 5, consumes)).toMatchObject({ kind: "reduce" });
  });
});
