/** Stream messages and events (src/streams/messages.ts): encoding, decoding, size limits. */
import { describe, expect, it } from "vitest";
import {
  decodeEvent,
  encodeEvent,
  encodeJsonBody,
  MAX_MESSAGE_BYTES,
} from "../../src/streams/messages";
import { statusOf } from "../support/errors";

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
