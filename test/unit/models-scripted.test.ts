/** The scripted model (src/sessions/models/scripted.ts): deterministic replies, tool calls, failures. */
import { APICallError, type LanguageModelV4Prompt } from "@ai-sdk/provider";
import { afterEach, describe, expect, it, vi } from "vitest";
import { collectStream } from "../../src/sessions/models/collect";
import { createScriptedModel, splitWords } from "../../src/sessions/models/scripted";
import { call, collect, modelError, readAll, user } from "../support/models";

const scripted = createScriptedModel({ delayMs: 0 });

afterEach(() => {
  vi.restoreAllMocks();
});

// ---------------------------------------------------------------------------------------
// scripted model

describe("scripted model", () => {
  it("identifies itself as a v4 model", () => {
    expect(scripted.specificationVersion).toBe("v4");
    expect(scripted.provider).toBe("scripted");
    expect(scripted.modelId).toBe("scripted");
  });

  it("replies `You said: …` with a well-formed stream", async () => {
    const { stream } = await scripted.doStream(call("hello there  world"));
    const parts = await readAll(stream);
    const types = parts.map((p) => p.type);
    expect(types[0]).toBe("stream-start");
    expect(types.at(-1)).toBe("finish");
    expect(types.indexOf("text-start")).toBeLessThan(types.indexOf("text-delta"));
    expect(types.lastIndexOf("text-delta")).toBeLessThan(types.indexOf("text-end"));
    const deltas = parts.flatMap((p) => (p.type === "text-delta" ? [p.delta] : []));
    expect(deltas).toEqual(["You ", "said: ", "hello ", "there  ", "world"]);
    expect(deltas.join("")).toBe("You said: hello there  world");
    const start = parts.find((p) => p.type === "text-start");
    const end = parts.find((p) => p.type === "text-end");
    expect(start && "id" in start && start.id).toBeTruthy();
    expect(end && "id" in end && end.id).toBe(start && "id" in start && start.id);
    const finish = parts.at(-1);
    expect(finish?.type === "finish" && finish.finishReason).toEqual({
      unified: "stop",
      raw: "stop",
    });
  });

  it("word deltas always concatenate to the exact reply", () => {
    for (const text of ["a", " lead", "trail ", "multi\nline\ttext  here", "x  y   z", ""]) {
      expect(splitWords(text).join("")).toBe(text);
    }
  });

  it("answers the last user message of a longer prompt", async () => {
    const prompt: LanguageModelV4Prompt = [
      { role: "system", content: "be brief" },
      user("first"),
      { role: "assistant", content: [{ type: "text", text: "You said: first" }] },
      user("second message"),
    ];
    const result = await collect(scripted, call(prompt));
    expect(result.text).toBe("You said: second message");
    expect(result.deltas.join("")).toBe(result.text);
    expect(result.finishReason).toBe("stop");
    expect(result.toolCalls).toEqual([]);
  });

  it("parses `call <tool> <json>` into a tool call", async () => {
    const result = await collect(scripted, call('call notes_write {"text": "hi"}'));
    expect(result.toolCalls).toEqual([
      { toolCallId: "call-0", toolName: "notes_write", input: '{"text":"hi"}' },
    ]);
    expect(result.finishReason).toBe("tool-calls");
    expect(result.text).toBe("");
  });

  it("parses several calls, one per line, with ids derived from the request id", async () => {
    const text = 'call notes_write {"text":"a"}\ncall clock_now {}\n\ncall notes_read {"id":1}';
    const result = await collect(scripted, call(text, { requestId: "req-7" }));
    expect(result.toolCalls).toEqual([
      { toolCallId: "req-7-call-0", toolName: "notes_write", input: '{"text":"a"}' },
      { toolCallId: "req-7-call-1", toolName: "clock_now", input: "{}" },
      { toolCallId: "req-7-call-2", toolName: "notes_read", input: '{"id":1}' },
    ]);
    const other = await collect(scripted, call(text, { requestId: "req-8" }));
    expect(other.toolCalls.map((c) => c.toolCallId)).toEqual([
      "req-8-call-0",
      "req-8-call-1",
      "req-8-call-2",
    ]);
  });

  it("emits tool-input parts before each tool-call part", async () => {
    const { stream } = await scripted.doStream(call("call clock_now {}", { requestId: "r" }));
    const types = (await readAll(stream)).map((p) => p.type);
    expect(types).toEqual([
      "stream-start",
      "response-metadata",
      "tool-input-start",
      "tool-input-delta",
      "tool-input-end",
      "tool-call",
      "finish",
    ]);
  });

  it("passes invalid JSON arguments through raw, and missing arguments as {}", async () => {
    const result = await collect(scripted, call("call notes_write {not json\ncall clock_now"));
    expect(result.toolCalls).toEqual([
      { toolCallId: "call-0", toolName: "notes_write", input: "{not json" },
      { toolCallId: "call-1", toolName: "clock_now", input: "{}" },
    ]);
  });

  it("accepts one call whose JSON arguments span lines", async () => {
    const result = await collect(scripted, call('call notes_write {\n  "text": "a"\n}'));
    expect(result.toolCalls).toEqual([
      { toolCallId: "call-0", toolName: "notes_write", input: '{"text":"a"}' },
    ]);
  });

  it("does not treat look-alikes as calls", async () => {
    for (const text of ["calling all", "call Bad-Name {}", "please call clock_now {}"]) {
      const result = await collect(scripted, call(text));
      expect(result.toolCalls).toEqual([]);
      expect(result.text).toBe(`You said: ${text}`);
    }
  });

  it("summarises every result of the last tool message, in order", async () => {
    const prompt: LanguageModelV4Prompt = [
      user('call notes_write {"text":"x"}\ncall clock_now {}'),
      {
        role: "assistant",
        content: [
          { type: "tool-call", toolCallId: "c0", toolName: "notes_write", input: { text: "x" } },
          { type: "tool-call", toolCallId: "c1", toolName: "clock_now", input: {} },
        ],
      },
      {
        role: "tool",
        content: [
          {
            type: "tool-result",
            toolCallId: "c0",
            toolName: "notes_write",
            output: { type: "json", value: { saved: true } },
          },
          {
            type: "tool-result",
            toolCallId: "c1",
            toolName: "clock_now",
            output: { type: "text", value: "2026-01-01T00:00:00.000Z" },
          },
        ],
      },
    ];
    const result = await collect(scripted, call(prompt));
    expect(result.text).toBe(
      'Tool results: notes_write returned {"saved":true}; clock_now returned "2026-01-01T00:00:00.000Z".',
    );
    expect(result.deltas.length).toBeGreaterThan(3);
    expect(result.deltas.join("")).toBe(result.text);
    expect(result.finishReason).toBe("stop");
  });

  it("renders tool errors and denials", async () => {
    const prompt: LanguageModelV4Prompt = [
      user("call a {}"),
      {
        role: "tool",
        content: [
          {
            type: "tool-result",
            toolCallId: "c0",
            toolName: "notes_write",
            output: { type: "error-json", value: { error: "invalid arguments" } },
          },
          {
            type: "tool-result",
            toolCallId: "c1",
            toolName: "shell",
            output: { type: "execution-denied", reason: "not allowed" },
          },
        ],
      },
    ];
    const result = await collect(scripted, call(prompt));
    expect(result.text).toBe(
      'Tool results: notes_write failed with {"error":"invalid arguments"}; shell was denied ("not allowed").',
    );
  });

  it("fails the first N attempts with an APICallError thrown from doStream, then replies", async () => {
    for (const attempt of [1, 2]) {
      const error = await scripted.doStream(call("fail 429 2", { attempt })).then(
        () => null,
        (e: unknown) => e,
      );
      expect(APICallError.isInstance(error)).toBe(true);
      expect((error as APICallError).statusCode).toBe(429);
      expect((error as APICallError).isRetryable).toBe(true);
    }
    const ok = await collect(scripted, call("fail 429 2", { attempt: 3 }));
    expect(ok.text).toBe("You said: fail 429 2");
  });

  it("defaults the attempt to 1", async () => {
    const error = await modelError(collect(scripted, call("fail 503 1")));
    expect(error.status).toBe(503);
    expect(error.retryable).toBe(true);
    expect((await collect(scripted, call("fail 503 1", { attempt: 2 }))).text).toBe(
      "You said: fail 503 1",
    );
  });

  it("`always` fails every attempt; statuses map to retryability", async () => {
    for (const attempt of [1, 5, 50]) {
      const error = await modelError(collect(scripted, call("fail 400 always", { attempt })));
      expect(error.status).toBe(400);
      expect(error.retryable).toBe(false);
      expect(error.cancelled).toBe(false);
    }
    for (const [status, retryable] of [
      [408, true],
      [409, true],
      [429, true],
      [500, true],
      [599, true],
      [401, false],
      [404, false],
      [422, false],
    ] as const) {
      const error = await modelError(collect(scripted, call(`fail ${status} always`)));
      expect([error.status, error.retryable]).toEqual([status, retryable]);
    }
  });

  it("`always cleanup` surfaces as an error part on an open stream whose cancel throws", async () => {
    const { stream } = await scripted.doStream(call("fail 500 always cleanup"));
    const reader = stream.getReader();
    expect((await reader.read()).value?.type).toBe("stream-start");
    const errorPart = (await reader.read()).value;
    expect(errorPart?.type).toBe("error");
    expect(APICallError.isInstance(errorPart?.type === "error" && errorPart.error)).toBe(true);
    await expect(reader.cancel()).rejects.toThrow("scripted cleanup failure");
  });

  it("a failing cleanup never masks the first error (it is logged instead)", async () => {
    const logged: string[] = [];
    vi.spyOn(console, "error").mockImplementation((line: unknown) => {
      logged.push(String(line));
    });
    const error = await modelError(
      collect(scripted, call("fail 503 always cleanup", { attempt: 3 })),
    );
    expect(error.status).toBe(503);
    expect(error.retryable).toBe(true);
    expect(error.message).toContain("scripted failure");
    expect(logged).toHaveLength(1);
    const entry = JSON.parse(logged[0] ?? "{}");
    expect(entry).toMatchObject({
      msg: "model stream cleanup failed",
      provider: "scripted",
      error: "scripted cleanup failure",
    });
    expect(entry.firstError).toContain("scripted failure");
  });

  it("`cleanup` with a count fails only the first attempts", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    await modelError(collect(scripted, call("fail 429 1 cleanup", { attempt: 1 })));
    const ok = await collect(scripted, call("fail 429 1 cleanup", { attempt: 2 }));
    expect(ok.text).toBe("You said: fail 429 1 cleanup");
  });

  it("an abort mid-stream errors the stream with an AbortError promptly, even mid-delay", async () => {
    // A 10 s delay per token: if the abort were not prompt, the test would time out.
    const slow = createScriptedModel({ delayMs: 10_000 });
    const controller = new AbortController();
    const { stream } = await slow.doStream(call("one two three", undefined, controller.signal));
    const reader = stream.getReader();
    const seen: string[] = [];
    for (;;) {
      const { value } = await reader.read();
      if (value?.type === "text-delta") {
        seen.push(value.delta);
        break;
      }
    }
    const pending = reader.read();
    controller.abort();
    const error = await pending.then(
      () => null,
      (e: unknown) => e,
    );
    expect((error as Error).name).toBe("AbortError");
    expect(seen).toEqual(["You "]);
  });

  it("collectStream reports an abort as cancelled and not retryable", async () => {
    const logSpy = vi.spyOn(console, "error");
    const slow = createScriptedModel({ delayMs: 10_000 });
    const controller = new AbortController();
    const deltas: string[] = [];
    const error = await modelError(
      collectStream(slow, call("one two three", undefined, controller.signal), (delta) => {
        deltas.push(delta);
        controller.abort(new Error("user cancelled"));
      }),
    );
    expect(error.cancelled).toBe(true);
    expect(error.retryable).toBe(false);
    expect(error.message).toContain("user cancelled");
    expect(deltas).toEqual(["You "]);
    // The stream errored by itself on the abort: that is not a cleanup failure to log.
    expect(logSpy).not.toHaveBeenCalled();
  });

  it("an already aborted signal fails before streaming", async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(scripted.doStream(call("hi", undefined, controller.signal))).rejects.toMatchObject(
      {
        name: "AbortError",
      },
    );
    const error = await modelError(collect(scripted, call("hi", undefined, controller.signal)));
    expect(error.cancelled).toBe(true);
  });

  it("waits delayMs between deltas", async () => {
    const model = createScriptedModel({ delayMs: 30 });
    const started = Date.now();
    const result = await collect(model, call("a b c d"));
    // "You said: a b c d" → 6 deltas → 5 delays.
    expect(result.deltas).toHaveLength(6);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  it("doGenerate follows the same script", async () => {
    const text = await scripted.doGenerate(call("hi there"));
    expect(text.content).toEqual([{ type: "text", text: "You said: hi there" }]);
    expect(text.finishReason.unified).toBe("stop");
    const tools = await scripted.doGenerate(call("call clock_now {}", { requestId: "g" }));
    expect(tools.content).toEqual([
      { type: "tool-call", toolCallId: "g-call-0", toolName: "clock_now", input: "{}" },
    ]);
    expect(tools.finishReason.unified).toBe("tool-calls");
    await expect(scripted.doGenerate(call("fail 502 always cleanup"))).rejects.toMatchObject({
      statusCode: 502,
    });
  });
});

// ---------------------------------------------------------------------------------------
// collector, with hand-built streams
