/** Pure stream codecs: wire offsets, paths, cursors, SSE framing, content types, messages. */
import { describe, expect, it } from "vitest";
import { DomainError } from "../../src/errors/domain";
import { HTTP_STATUS } from "../../src/errors/http";
import {
  isJsonType,
  isSseBinary,
  isValidContentType,
  sameContentType,
} from "../../src/streams/content-type";
import {
  decodeEvent,
  encodeEvent,
  encodeJsonBody,
  MAX_MESSAGE_BYTES,
} from "../../src/streams/messages";
import { encodeOffset, parseOffset } from "../../src/streams/offsets";
import { validateStreamPath } from "../../src/streams/path";
import { nextCursor } from "../../src/streams/protocol/cursor";
import { base64, controlEvent, dataEvent } from "../../src/streams/protocol/sse";

function statusOf(fn: () => unknown): number | null {
  try {
    fn();
    return null;
  } catch (error) {
    return error instanceof DomainError ? HTTP_STATUS[error.code] : -1;
  }
}

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

describe("SSE framing", () => {
  it("splits payload lines on every terminator so nothing can inject an event", () => {
    expect(dataEvent("a\r\nevent: control\rdata: x\nb")).toBe(
      "event: data\ndata:a\ndata:event: control\ndata:data: x\ndata:b\n\n",
    );
  });
  it("writes control events as one line of JSON", () => {
    expect(controlEvent({ streamNextOffset: "1", streamCursor: "2", upToDate: true })).toBe(
      'event: control\ndata:{"streamNextOffset":"1","streamCursor":"2","upToDate":true}\n\n',
    );
  });
  it("base64-encodes bytes, large ones too", () => {
    expect(base64(new Uint8Array([72, 101, 108, 108, 111]))).toBe("SGVsbG8=");
    const big = new Uint8Array(100_000).map((_, i) => i % 256);
    expect(Uint8Array.from(atob(base64(big)), (c) => c.charCodeAt(0))).toEqual(big);
  });
});

describe("content types", () => {
  it("compare by media type, case and parameters aside", () => {
    expect(sameContentType("Application/JSON; charset=utf-8", "application/json")).toBe(true);
    expect(sameContentType("text/plain", "application/json")).toBe(false);
    expect(isJsonType("application/json;charset=utf-8")).toBe(true);
  });
  it("send only non-text, non-JSON types as base64 over SSE", () => {
    expect(isSseBinary("text/plain")).toBe(false);
    expect(isSseBinary("application/json")).toBe(false);
    expect(isSseBinary("image/png")).toBe(true);
    expect(isSseBinary("application/octet-stream")).toBe(true);
  });
  it("validate the type/subtype shape", () => {
    expect(isValidContentType("text/plain; charset=utf-8")).toBe(true);
    expect(isValidContentType("garbage")).toBe(false);
    expect(isValidContentType("")).toBe(false);
  });
});

describe("messages and events", () => {
  it("round-trip a typed event through its stored JSON", () => {
    const encoded = encodeEvent({
      type: "order/placed",
      payload: { id: 1 },
      metadata: { by: "x" },
      idempotencyKey: "k",
    });
    expect(encoded.type).toBe("order/placed");
    expect(encoded.idempotencyKey).toBe("k");
    expect(decodeEvent(3, encoded.body as string, 0)).toEqual({
      offset: 3,
      type: "order/placed",
      payload: { id: 1 },
      metadata: { by: "x" },
      idempotencyKey: "k",
      createdAt: "1970-01-01T00:00:00.000Z",
    });
  });

  it("reads a JSON message with a string type as an event, anything else as an untyped message", () => {
    const [typed, untyped, array] = encodeJsonBody(
      '[{"type":"a/b","payload":1,"idempotencyKey":"i"},{"kind":"x"},[1,2]]',
      false,
    );
    expect(typed).toMatchObject({ type: "a/b", idempotencyKey: "i" });
    expect(untyped).toMatchObject({ type: null, idempotencyKey: null });
    expect(decodeEvent(2, untyped!.body as string, 0)).toMatchObject({
      type: null,
      payload: { kind: "x" },
    });
    expect(array!.body).toBe("[1,2]");
  });

  it("flattens one level of array, refuses an empty array on append, accepts it on create", () => {
    expect(encodeJsonBody("[[1],[2]]", false).map((m) => m.body)).toEqual(["[1]", "[2]"]);
    expect(statusOf(() => encodeJsonBody("[]", false))).toBe(400);
    expect(encodeJsonBody("[]", true)).toEqual([]);
    expect(statusOf(() => encodeJsonBody("{nope", false))).toBe(400);
  });

  it("refuses a message over the row limit with a 413", () => {
    const big = JSON.stringify("é".repeat(MAX_MESSAGE_BYTES / 2));
    expect(statusOf(() => encodeJsonBody(big, false))).toBe(413);
    expect(
      statusOf(() => encodeEvent({ type: "a/b", payload: "x".repeat(MAX_MESSAGE_BYTES) })),
    ).toBe(413);
  });
});
