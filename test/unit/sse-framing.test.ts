/** SSE framing (src/streams/protocol/sse.ts): data and control events, base64. */
import { describe, expect, it } from "vitest";
import { base64, controlEvent, dataEvent } from "../../src/streams/protocol/sse";

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
