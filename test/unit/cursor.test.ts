/** Long-poll cursors (src/streams/protocol/cursor.ts). */
import { describe, expect, it } from "vitest";
import { nextCursor } from "../../src/streams/protocol/cursor";

describe("long-poll cursors", () => {
  const epoch = Date.UTC(2024, 9, 9);
  it("count 20-second intervals since 2024-10-09", () => {
    expect(nextCursor(epoch + 20_000 * 7 + 5, null)).toBe("7");
  });
  it("always move past a cursor the client echoes", () => {
    const now = epoch + 20_000 * 100;
    for (const random of [0, 0.5, 0.9999]) {
      const next = Number(nextCursor(now, "100", () => random));
      expect(next).toBeGreaterThan(100);
      expect(next).toBeLessThanOrEqual(100 + 180);
    }
    expect(nextCursor(now, "50")).toBe("100");
    expect(nextCursor(now, "garbage")).toBe("100");
  });
});
