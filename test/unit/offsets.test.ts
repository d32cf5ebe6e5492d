/** Wire offsets (src/streams/offsets.ts). */
import { describe, expect, it } from "vitest";
import { encodeOffset, parseOffset } from "../../src/streams/offsets";
import { statusOf } from "../support/errors";

describe("wire offsets", () => {
  it("round-trip and sort as strings in offset order", () => {
    const positions = [0, 1, 9, 10, 99, 100, 123_456_789, Number.MAX_SAFE_INTEGER];
    const wire = positions.map(encodeOffset);
    expect([...wire].sort()).toEqual(wire);
    for (const [i, w] of wire.entries())
      expect(parseOffset(w)).toEqual({ kind: "at", position: positions[i] });
    expect(encodeOffset(0)).toBe("0000000000000000_0000000000000000");
  });

  it("understands the sentinels and never produces them", () => {
    expect(parseOffset("-1")).toEqual({ kind: "start" });
    expect(parseOffset(null)).toEqual({ kind: "start" });
    expect(parseOffset("now")).toEqual({ kind: "now" });
    expect(encodeOffset(1)).not.toMatch(/^(-1|now)$/);
  });

  it.each([
    "",
    "NaN",
    "-2",
    "1",
    "abc",
    "0000000000000001",
    "0000000000000000_0000000000000001",
    "0,1",
    "x".repeat(300),
  ])("rejects %j with a 400", (raw) => expect(statusOf(() => parseOffset(raw))).toBe(400));

  it("refuses positions that are not non-negative safe integers", () => {
    expect(() => encodeOffset(-1)).toThrow(RangeError);
    expect(() => encodeOffset(1.5)).toThrow(RangeError);
  });
});
