/** Stream path validation (src/streams/path.ts). */
import { describe, expect, it } from "vitest";
import { DomainError } from "../../src/errors/domain";
import { validateStreamPath } from "../../src/streams/path";
import { statusOf } from "../support/errors";

describe("stream paths", () => {
  it("canonicalises a leading slash and accepts the allowed characters", () => {
    expect(validateStreamPath("orders/eu")).toBe("/orders/eu");
    expect(validateStreamPath("/a.b_c~d:e@f!g$h'i(j)k*l+m=n-o")).toBe(
      "/a.b_c~d:e@f!g$h'i(j)k*l+m=n-o",
    );
  });

  it.each([
    ["/"],
    ["/a//b"],
    ["/a/./b"],
    ["/a/../b"],
    ["/a/b/"],
    ["/a b"],
    ["/a%20b"],
    ["/ä"],
    [`/${"a".repeat(512)}`],
  ])("rejects %j with a 400 naming the reason", (path) => {
    try {
      validateStreamPath(path);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(DomainError);
      expect((error as DomainError).code).toBe("invalid_path");
      expect((error as DomainError).message).toMatch(/invalid stream path: .+/);
    }
  });

  it("counts the 512-byte limit in UTF-8 bytes", () => {
    expect(validateStreamPath(`/${"a".repeat(511)}`)).toHaveLength(512);
    expect(statusOf(() => validateStreamPath(`/${"a".repeat(512)}`))).toBe(400);
  });
});
