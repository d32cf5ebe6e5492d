/** Delivery rules of a subscription (src/streams/delivery.ts): type matching, retry backoff, acks. */
import { describe, expect, it } from "vitest";
import {
  ackOffsetOf,
  DEFAULT_DELIVERY,
  type DeliverySettings,
  matches,
  retryDelay,
} from "../../src/streams/delivery";

describe("matches", () => {
  it("matches listed types only", () => {
    expect(matches(["test/a"], "test/a")).toBe(true);
    expect(matches(["test/a"], "test/b")).toBe(false);
    expect(matches(["test/a"], null)).toBe(false);
    expect(matches(["test/a", "test/b"], "test/b")).toBe(true);
  });

  it('"*" matches every non-reserved type, including untyped messages', () => {
    expect(matches(["*"], "test/a")).toBe(true);
    expect(matches(["*"], null)).toBe(true);
    expect(matches(["*"], "stream/subscriber-failed")).toBe(false);
    expect(matches(["*"], "stream/subscription-configured")).toBe(false);
  });

  it("a subscription may list a reserved type explicitly", () => {
    expect(matches(["stream/subscriber-failed"], "stream/subscriber-failed")).toBe(true);
  });
});

describe("retryDelay", () => {
  const settings: DeliverySettings = {
    ...DEFAULT_DELIVERY,
    retryBaseMs: 100,
    retryMaxMs: 10_000,
  };
  const mid = () => 0.5;

  it("grows exponentially from the base", () => {
    const delays = [1, 2, 3, 4, 5].map((a) => retryDelay(a, true, settings, mid));
    expect(delays).toEqual([100, 200, 400, 800, 1_600]);
  });

  it("is capped at retryMaxMs (before jitter)", () => {
    expect(retryDelay(20, true, settings, mid)).toBe(10_000);
    expect(retryDelay(1_000, true, settings, mid)).toBe(10_000);
  });

  it("treats attempts below 1 as the first attempt", () => {
    expect(retryDelay(0, true, settings, mid)).toBe(100);
  });

  it("jitters within ±20%", () => {
    expect(retryDelay(3, true, settings, () => 0)).toBe(320);
    expect(retryDelay(3, true, settings, () => 0.999999)).toBeLessThanOrEqual(480);
    expect(retryDelay(3, true, settings, () => 0.999999)).toBeGreaterThan(479);
    for (let i = 0; i < 200; i++) {
      const d = retryDelay(4, true, settings);
      expect(d).toBeGreaterThanOrEqual(640);
      expect(d).toBeLessThanOrEqual(960);
    }
  });

  it("a non-retryable failure waits the cap", () => {
    expect(retryDelay(1, false, settings, mid)).toBe(10_000);
    expect(retryDelay(1, false, settings, () => 0)).toBe(8_000);
  });
});

describe("ackOffsetOf", () => {
  it("reads a non-negative safe integer ackOffset", () => {
    expect(ackOffsetOf({ ackOffset: 0 })).toBe(0);
    expect(ackOffsetOf({ ackOffset: 42 })).toBe(42);
  });

  it.each([
    null,
    undefined,
    42,
    "42",
    {},
    { ackOffset: "3" },
    { ackOffset: -1 },
    { ackOffset: 1.5 },
    { ackOffset: Number.NaN },
    { ackOffset: 2 ** 60 },
  ])("answers null for %j", (value) => {
    expect(ackOffsetOf(value)).toBeNull();
  });
});
