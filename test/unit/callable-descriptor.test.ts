/** Callable descriptors (src/callables/descriptor.ts): what a subscription may name as its target. */
import { describe, expect, it } from "vitest";
import { callableKey, callableSchema } from "../../src/callables/descriptor";

describe("callable descriptors", () => {
  it.each([
    { kind: "durable-object", binding: "TEST_HOSTS", name: "h1", method: "deliver" },
    { kind: "service", binding: "AUDIT", method: "receive" },
    { kind: "webhook", url: "https://hooks.example.com/in" },
  ])("accepts %j", (descriptor) => {
    expect(callableSchema.safeParse(descriptor).success).toBe(true);
  });

  it.each([
    ["unknown kind", { kind: "queue", binding: "Q" }],
    ["missing method", { kind: "durable-object", binding: "TEST_HOSTS", name: "h1" }],
    ["missing name", { kind: "durable-object", binding: "TEST_HOSTS", method: "deliver" }],
    ["empty name", { kind: "durable-object", binding: "TEST_HOSTS", name: "", method: "deliver" }],
    ["extra field", { kind: "service", binding: "AUDIT", method: "receive", extra: 1 }],
    ["lower-case binding", { kind: "service", binding: "audit", method: "receive" }],
    ["method fetch", { kind: "service", binding: "AUDIT", method: "fetch" }],
    ["method alarm", { kind: "durable-object", binding: "X", name: "n", method: "alarm" }],
    ["method constructor", { kind: "service", binding: "AUDIT", method: "constructor" }],
    ["method with a dot", { kind: "service", binding: "AUDIT", method: "a.b" }],
    ["webhook not a URL", { kind: "webhook", url: "not a url" }],
    ["webhook missing url", { kind: "webhook" }],
    ["webhook URL too long", { kind: "webhook", url: `https://e.com/${"a".repeat(2100)}` }],
    ["code instead of data", { kind: "service", binding: "AUDIT", method: "x", fn: "() => 1" }],
    ["null", null],
    ["string", "TEST_HOSTS.deliver"],
  ])("refuses %s", (_label, descriptor) => {
    expect(callableSchema.safeParse(descriptor).success).toBe(false);
  });

  it("callableKey does not depend on key order", () => {
    const a = callableSchema.parse({
      kind: "durable-object",
      binding: "B",
      name: "n",
      method: "m",
    });
    const b = callableSchema.parse({
      method: "m",
      name: "n",
      binding: "B",
      kind: "durable-object",
    });
    expect(callableKey(a)).toBe(callableKey(b));
    expect(callableKey(a)).not.toBe(
      callableKey(
        callableSchema.parse({ kind: "durable-object", binding: "B", name: "o", method: "m" }),
      ),
    );
  });
});
