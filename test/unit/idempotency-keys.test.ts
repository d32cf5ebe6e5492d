/** Reserved processor idempotency keys (src/streams/idempotency-keys.ts). */
import { describe, expect, it } from "vitest";
import { isProcessorKey, processorKey } from "../../src/streams/idempotency-keys";

describe("processor idempotency keys", () => {
  it("the keys processors make are recognised; ordinary client keys are not", () => {
    expect(isProcessorKey(processorKey("agent", "turn-start", 12))).toBe(true);
    expect(isProcessorKey("counter/count@3")).toBe(true);
    expect(isProcessorKey("tools/approval-call/1@44")).toBe(true);
    for (const key of ["order-1", "order/1", "a@1", "input:x", "session/created", "x/y@z", "/a@1"])
      expect(isProcessorKey(key), key).toBe(false);
  });
});
