/** The stream collector and retry helpers (src/sessions/models/collect.ts): errors, aborts, cleanup, backoff. */
import type { LanguageModelV4StreamPart } from "@ai-sdk/provider";
import { describe, expect, it } from "vitest";
import {
  collectStream,
  isRetryableStatus,
  parseRetryAfterMs,
  retryDelayMs,
} from "../../src/sessions/models/collect";
import { createScriptedModel } from "../../src/sessions/models/scripted";
import { call, collect, modelError, streamModel } from "../support/models";

const scripted = createScriptedModel({ delayMs: 0 });

// ---------------------------------------------------------------------------------------
// collector, with hand-built streams

describe("collectStream", () => {
  it("awaits onDelta in order", async () => {
    const events: string[] = [];
    await collectStream(scripted, call("a b c"), async (delta) => {
      events.push(`start ${delta}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
      events.push(`end ${delta}`);
    });
    expect(events).toEqual([
      "start You ",
      "end You ",
      "start said: ",
      "end said: ",
      "start a ",
      "end a ",
      "start b ",
      "end b ",
      "start c",
      "end c",
    ]);
  });

  it("rethrows an onDelta error unchanged and cancels the stream", async () => {
    let cancelled = false;
    const model = streamModel(
      () =>
        new ReadableStream<LanguageModelV4StreamPart>({
          start(controller) {
            controller.enqueue({ type: "text-start", id: "t" });
            controller.enqueue({ type: "text-delta", id: "t", delta: "x" });
          },
          cancel() {
            cancelled = true;
          },
        }),
    );
    const boom = new Error("append failed");
    await expect(
      collectStream(model, call("x"), () => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(cancelled).toBe(true);
  });

  it("classifies error parts: OpenAI-style error chunks and network failures", async () => {
    const withError = (error: unknown) =>
      streamModel(
        () =>
          new ReadableStream<LanguageModelV4StreamPart>({
            start(controller) {
              controller.enqueue({ type: "stream-start", warnings: [] });
              controller.enqueue({ type: "error", error });
            },
          }),
      );
    const overloaded = await modelError(
      collect(withError({ message: "The server is overloaded", type: "server_error" }), call("x")),
    );
    expect([overloaded.message, overloaded.retryable]).toEqual(["The server is overloaded", true]);
    const invalid = await modelError(
      collect(withError({ message: "bad request", type: "invalid_request_error" }), call("x")),
    );
    expect([invalid.message, invalid.retryable]).toEqual(["bad request", false]);
    const coded = await modelError(
      collect(withError({ message: "slow down", code: 429 }), call("x")),
    );
    expect([coded.status, coded.retryable]).toEqual([429, true]);
    const plain = await modelError(collect(withError(new Error("unexpected token")), call("x")));
    expect(plain.retryable).toBe(false);
  });

  it("treats a stream that errors with a network failure as retryable", async () => {
    const model = streamModel(
      () =>
        new ReadableStream<LanguageModelV4StreamPart>({
          pull(controller) {
            controller.error(new TypeError("Network connection lost."));
          },
        }),
    );
    const error = await modelError(collect(model, call("x")));
    expect(error.retryable).toBe(true);
    expect(error.status).toBeUndefined();
  });

  it("reports `interrupted` when a stream ends without a finish part", async () => {
    const model = streamModel(
      () =>
        new ReadableStream<LanguageModelV4StreamPart>({
          start(controller) {
            controller.enqueue({ type: "text-delta", id: "t", delta: "partial" });
            controller.close();
          },
        }),
    );
    expect(await collect(model, call("x"))).toMatchObject({
      text: "partial",
      finishReason: "interrupted",
    });
  });

  it("stops a model that ignores the abort signal", async () => {
    let cancelledWith: unknown;
    const model = streamModel(
      () =>
        new ReadableStream<LanguageModelV4StreamPart>({
          start(controller) {
            controller.enqueue({ type: "text-delta", id: "t", delta: "tick" });
          },
          cancel(reason) {
            cancelledWith = reason;
          },
        }),
    );
    const controller = new AbortController();
    const result = collectStream(model, call("x", undefined, controller.signal), () => {
      setTimeout(() => controller.abort(), 5);
    });
    const error = await modelError(result);
    expect(error.cancelled).toBe(true);
    expect((cancelledWith as Error).name).toBe("AbortError");
  });
});

// ---------------------------------------------------------------------------------------
// retry helpers

describe("retry helpers", () => {
  it("isRetryableStatus", () => {
    expect([408, 409, 429, 500, 502, 503, 504, 599].every(isRetryableStatus)).toBe(true);
    expect([200, 400, 401, 403, 404, 413, 422, 600].some(isRetryableStatus)).toBe(false);
  });

  it("backoff grows exponentially, with jitter inside [d/2, d]", () => {
    const low = [1, 2, 3, 4].map((a) => retryDelayMs(a, undefined, { random: () => 0 }));
    const high = [1, 2, 3, 4].map((a) => retryDelayMs(a, undefined, { random: () => 0.999999 }));
    expect(low).toEqual([500, 1000, 2000, 4000]);
    expect(high).toEqual([1000, 2000, 4000, 8000]);
    for (let attempt = 1; attempt <= 5; attempt++) {
      const d = 1000 * 2 ** (attempt - 1);
      for (let i = 0; i < 20; i++) {
        const delay = retryDelayMs(attempt);
        expect(delay).toBeGreaterThanOrEqual(d / 2);
        expect(delay).toBeLessThanOrEqual(d);
      }
    }
  });

  it("is capped", () => {
    expect(retryDelayMs(10, undefined, { random: () => 1 })).toBe(30_000);
    expect(retryDelayMs(1_000, undefined, { random: () => 1 })).toBe(30_000);
    expect(retryDelayMs(6, null, { random: () => 1, baseMs: 100, maxMs: 400 })).toBe(400);
  });

  it("honours Retry-After seconds and dates", () => {
    expect(retryDelayMs(1, "1")).toBe(1000);
    expect(retryDelayMs(5, "2.5")).toBe(2500);
    expect(retryDelayMs(1, "0")).toBe(0);
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(retryDelayMs(1, "Thu, 01 Jan 2026 00:00:07 GMT", { now: () => now })).toBe(7000);
    expect(retryDelayMs(1, "86400")).toBe(300_000);
    expect(retryDelayMs(1, "soon", { random: () => 0 })).toBe(500);
    expect(parseRetryAfterMs(undefined)).toBeUndefined();
    expect(parseRetryAfterMs("-3")).toBeUndefined();
  });
});
