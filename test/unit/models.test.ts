/**
 * The model layer: the scripted model, the stream collector (errors, aborts, cleanup), the
 * OpenAI-compatible provider against a stubbed fetch speaking real chat-completions SSE, the
 * registry, and the retry helpers.
 */
import {
  APICallError,
  type LanguageModelV4,
  type LanguageModelV4CallOptions,
  type LanguageModelV4Prompt,
  type LanguageModelV4StreamPart,
} from "@ai-sdk/provider";
import { afterEach, describe, expect, it, vi } from "vitest";
import { readModelSettings, SettingsError } from "../../src/env";
import {
  collectStream,
  isRetryableStatus,
  ModelError,
  parseRetryAfterMs,
  retryDelayMs,
} from "../../src/sessions/models/collect";
import {
  CONTEXT_BUDGETS,
  contextBudgetBytes,
  DEFAULT_MODEL,
  ModelConfigError,
  modelSpecSchema,
  parseModelSpec,
  resolveModel,
} from "../../src/sessions/models/registry";
import { createScriptedModel, splitWords } from "../../src/sessions/models/scripted";

// ---------------------------------------------------------------------------------------
// helpers

function user(text: string): LanguageModelV4Prompt[number] {
  return { role: "user", content: [{ type: "text", text }] };
}

function call(
  prompt: LanguageModelV4Prompt | string,
  scripted?: { requestId?: string; attempt?: number },
  abortSignal?: AbortSignal,
): LanguageModelV4CallOptions {
  return {
    prompt: typeof prompt === "string" ? [user(prompt)] : prompt,
    ...(scripted ? { providerOptions: { scripted } } : {}),
    ...(abortSignal ? { abortSignal } : {}),
  };
}

async function readAll(
  stream: ReadableStream<LanguageModelV4StreamPart>,
): Promise<LanguageModelV4StreamPart[]> {
  const parts: LanguageModelV4StreamPart[] = [];
  for await (const part of stream) parts.push(part);
  return parts;
}

async function collect(model: LanguageModelV4, options: LanguageModelV4CallOptions) {
  const deltas: string[] = [];
  const result = await collectStream(model, options, (delta) => {
    deltas.push(delta);
  });
  return { ...result, deltas };
}

async function modelError(promise: Promise<unknown>): Promise<ModelError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ModelError);
    return error as ModelError;
  }
  throw new Error("expected a ModelError");
}

/** A model whose stream is built by the test. */
function streamModel(
  build: (options: LanguageModelV4CallOptions) => ReadableStream<LanguageModelV4StreamPart>,
): LanguageModelV4 {
  return {
    specificationVersion: "v4",
    provider: "test",
    modelId: "test",
    supportedUrls: {},
    doGenerate: () => Promise.reject(new Error("not used")),
    doStream: async (options) => ({ stream: build(options) }),
  };
}

const scripted = createScriptedModel({ delayMs: 0 });

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
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
// OpenAI-compatible provider over a stubbed fetch

const BASE_URL = "https://llm.example.test/v1";
const API_KEY = "sk-test-secret";
const openaiEnv = { OPENAI_BASE_URL: BASE_URL, OPENAI_API_KEY: API_KEY };

interface Captured {
  url: string;
  headers: Headers;
  body: Record<string, unknown>;
}

function chunk(delta: Record<string, unknown>, finishReason: string | null = null): string {
  return `data: ${JSON.stringify({
    id: "chatcmpl-123",
    object: "chat.completion.chunk",
    created: 1_760_000_000,
    model: "gpt-test",
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
  })}\n\n`;
}

function sseResponse(events: string[], onCancel?: () => void, hang = false): Response {
  const encoder = new TextEncoder();
  let i = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = events[i++];
      if (next !== undefined) controller.enqueue(encoder.encode(next));
      else if (!hang) controller.close();
      else return new Promise<void>(() => {});
    },
    cancel() {
      onCancel?.();
    },
  });
  return new Response(body, {
    status: 200,
    headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
  });
}

function stubFetch(respond: (request: Captured) => Response | Promise<Response>): Captured[] {
  const captured: Captured[] = [];
  vi.stubGlobal("fetch", async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    const entry: Captured = {
      url: request.url,
      headers: request.headers,
      body: JSON.parse(await request.text()),
    };
    captured.push(entry);
    return respond(entry);
  });
  return captured;
}

describe("OpenAI-compatible provider", () => {
  it("streams text from chat-completions SSE chunks", async () => {
    const original = globalThis.fetch;
    const requests = stubFetch(() =>
      sseResponse([
        chunk({ role: "assistant", content: "" }),
        chunk({ content: "Hel" }),
        chunk({ content: "lo" }),
        chunk({ content: " world" }),
        chunk({}, "stop"),
        "data: [DONE]\n\n",
      ]),
    );
    const model = resolveModel("openai:gpt-test", readModelSettings(openaiEnv));
    expect(model.provider).toBe("openai-compatible.chat");
    expect(model.modelId).toBe("gpt-test");
    const prompt: LanguageModelV4Prompt = [{ role: "system", content: "be brief" }, user("hi")];
    const result = await collect(model, call(prompt));
    expect(result).toEqual({
      text: "Hello world",
      deltas: ["Hel", "lo", " world"],
      toolCalls: [],
      finishReason: "stop",
    });
    expect(requests).toHaveLength(1);
    const [request] = requests;
    expect(request?.url).toBe(`${BASE_URL}/chat/completions`);
    expect(request?.headers.get("authorization")).toBe(`Bearer ${API_KEY}`);
    expect(request?.body).toMatchObject({
      model: "gpt-test",
      stream: true,
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "hi" },
      ],
    });
    vi.unstubAllGlobals();
    expect(globalThis.fetch).toBe(original);
  });

  it("assembles streamed tool calls from index/id/name/argument fragments", async () => {
    const requests = stubFetch(() =>
      sseResponse([
        chunk({
          role: "assistant",
          content: null,
          tool_calls: [
            {
              index: 0,
              id: "call_abc",
              type: "function",
              function: { name: "notes_write", arguments: "" },
            },
          ],
        }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: '{"text":' } }] }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: '"hi"}' } }] }),
        chunk({
          tool_calls: [
            {
              index: 1,
              id: "call_def",
              type: "function",
              function: { name: "clock_now", arguments: "{}" },
            },
          ],
        }),
        chunk({}, "tool_calls"),
        "data: [DONE]\n\n",
      ]),
    );
    const model = resolveModel("openai:gpt-test", readModelSettings(openaiEnv));
    const prompt: LanguageModelV4Prompt = [
      user("save hi"),
      {
        role: "assistant",
        content: [{ type: "tool-call", toolCallId: "call_old", toolName: "clock_now", input: {} }],
      },
      {
        role: "tool",
        content: [
          {
            type: "tool-result",
            toolCallId: "call_old",
            toolName: "clock_now",
            output: { type: "json", value: { now: "2026" } },
          },
        ],
      },
    ];
    const result = await collect(model, {
      ...call(prompt),
      tools: [
        {
          type: "function",
          name: "notes_write",
          description: "save a note",
          inputSchema: { type: "object", properties: { text: { type: "string" } } },
        },
      ],
    });
    expect(result.toolCalls).toEqual([
      { toolCallId: "call_abc", toolName: "notes_write", input: '{"text":"hi"}' },
      { toolCallId: "call_def", toolName: "clock_now", input: "{}" },
    ]);
    expect(result.finishReason).toBe("tool-calls");
    expect(result.text).toBe("");
    const body = requests[0]?.body as { tools: unknown; messages: unknown[] };
    expect(body.tools).toMatchObject([{ type: "function", function: { name: "notes_write" } }]);
    expect(body.messages).toMatchObject([
      { role: "user", content: "save hi" },
      { role: "assistant", tool_calls: [{ id: "call_old", function: { name: "clock_now" } }] },
      { role: "tool", tool_call_id: "call_old", content: '{"now":"2026"}' },
    ]);
  });

  function errorResponse(status: number, headers: Record<string, string> = {}): Response {
    return new Response(
      JSON.stringify({ error: { message: `upstream said ${status}`, type: "error", code: null } }),
      { status, headers: { "content-type": "application/json", ...headers } },
    );
  }

  it("a 429 with Retry-After is retryable and carries the header", async () => {
    stubFetch(() => errorResponse(429, { "retry-after": "1" }));
    const error = await modelError(
      collect(resolveModel("openai:gpt-test", readModelSettings(openaiEnv)), call("hi")),
    );
    expect(error.status).toBe(429);
    expect(error.retryable).toBe(true);
    expect(error.cancelled).toBe(false);
    expect(error.retryAfter).toBe("1");
    expect(error.message).toContain("upstream said 429");
    expect(retryDelayMs(1, error.retryAfter)).toBe(1000);
  });

  it("a 500 is retryable, a 400 is not", async () => {
    stubFetch(() => errorResponse(500));
    const server = await modelError(
      collect(resolveModel("openai:gpt-test", readModelSettings(openaiEnv)), call("hi")),
    );
    expect([server.status, server.retryable]).toEqual([500, true]);
    vi.unstubAllGlobals();
    stubFetch(() => errorResponse(400));
    const client = await modelError(
      collect(resolveModel("openai:gpt-test", readModelSettings(openaiEnv)), call("hi")),
    );
    expect([client.status, client.retryable]).toEqual([400, false]);
    expect(client.message).toContain("upstream said 400");
  });

  it("an error chunk inside the SSE stream becomes a ModelError", async () => {
    stubFetch(() =>
      sseResponse([
        chunk({ content: "Hel" }),
        `data: ${JSON.stringify({ error: { message: "The server had an error", type: "server_error" } })}\n\n`,
        "data: [DONE]\n\n",
      ]),
    );
    const deltas: string[] = [];
    const error = await modelError(
      collectStream(
        resolveModel("openai:gpt-test", readModelSettings(openaiEnv)),
        call("hi"),
        (d) => {
          deltas.push(d);
        },
      ),
    );
    expect(deltas).toEqual(["Hel"]);
    expect(error.message).toBe("The server had an error");
    expect(error.retryable).toBe(true);
  });

  it("a connection failure is retryable", async () => {
    vi.stubGlobal("fetch", async () => {
      throw new TypeError("fetch failed", { cause: new Error("ECONNREFUSED") });
    });
    const error = await modelError(
      collect(resolveModel("openai:gpt-test", readModelSettings(openaiEnv)), call("hi")),
    );
    expect(error.retryable).toBe(true);
    expect(error.status).toBeUndefined();
  });

  it("an abort mid-stream cancels the response body and reports cancelled", async () => {
    let bodyCancelled = false;
    stubFetch(() =>
      sseResponse(
        [chunk({ content: "Hel" })],
        () => {
          bodyCancelled = true;
        },
        true,
      ),
    );
    const controller = new AbortController();
    const error = await modelError(
      collectStream(
        resolveModel("openai:gpt-test", readModelSettings(openaiEnv)),
        call("hi", undefined, controller.signal),
        () => {
          setTimeout(() => controller.abort(), 1);
        },
      ),
    );
    expect(error.cancelled).toBe(true);
    expect(error.retryable).toBe(false);
    expect(bodyCancelled).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------
// registry

describe("registry", () => {
  it("resolves the scripted model by default", () => {
    expect(DEFAULT_MODEL).toBe("scripted");
    expect(resolveModel("scripted", readModelSettings({})).provider).toBe("scripted");
    expect(resolveModel(undefined, readModelSettings({})).provider).toBe("scripted");
    expect(resolveModel("", readModelSettings({})).provider).toBe("scripted");
  });

  it("lets env DEFAULT_MODEL override the default", () => {
    expect(readModelSettings({}).defaultModel).toBe("scripted");
    expect(readModelSettings({ DEFAULT_MODEL: "openai:gpt-4o-mini" }).defaultModel).toBe(
      "openai:gpt-4o-mini",
    );
    const model = resolveModel(
      undefined,
      readModelSettings({ ...openaiEnv, DEFAULT_MODEL: "openai:gpt-4o-mini" }),
    );
    expect([model.provider, model.modelId]).toEqual(["openai-compatible.chat", "gpt-4o-mini"]);
    expect(() => readModelSettings({ DEFAULT_MODEL: "gpt-4" }).defaultModel).toThrow(SettingsError);
  });

  it("validates specs with modelSpecSchema", () => {
    for (const good of [
      "scripted",
      "openai:gpt-4o-mini",
      "openai:llama3.1:8b",
      "openai:openai/gpt-oss-20b",
      "workers-ai:@cf/meta/llama-3.1-8b-instruct",
    ]) {
      expect(modelSpecSchema.safeParse(good).success).toBe(true);
    }
    for (const bad of [
      "",
      "scripted:x",
      "openai:",
      "openai",
      "anthropic:claude",
      "openai:a b",
      42,
    ]) {
      expect(modelSpecSchema.safeParse(bad).success).toBe(false);
    }
    expect(parseModelSpec("workers-ai:@cf/meta/llama-3.1-8b-instruct")).toEqual({
      provider: "workers-ai",
      modelId: "@cf/meta/llama-3.1-8b-instruct",
    });
    expect(() => resolveModel("nonsense:model", readModelSettings({}))).toThrow(ModelConfigError);
  });

  it("reads SCRIPTED_MODEL_DELAY_MS strictly", () => {
    expect(
      resolveModel("scripted", readModelSettings({ SCRIPTED_MODEL_DELAY_MS: "25" })).provider,
    ).toBe("scripted");
    expect(() =>
      resolveModel("scripted", readModelSettings({ SCRIPTED_MODEL_DELAY_MS: "fast" })),
    ).toThrow(/SCRIPTED_MODEL_DELAY_MS/);
  });

  it("parses model settings once per env, and a bad one fails only where it is used", () => {
    const env = { ...openaiEnv, SCRIPTED_MODEL_DELAY_MS: "fast", CONTEXT_BUDGET_BYTES: "2048" };
    const settings = readModelSettings(env);
    expect(readModelSettings(env)).toBe(settings);
    expect(resolveModel("openai:gpt-test", settings).provider).toBe("openai-compatible.chat");
    expect(contextBudgetBytes("scripted", settings)).toBe(2048);
    expect(contextBudgetBytes("openai:x", readModelSettings({}))).toBe(CONTEXT_BUDGETS.openai);
    expect(() => resolveModel("scripted", settings)).toThrow(SettingsError);
    expect(() => contextBudgetBytes("x", readModelSettings({ CONTEXT_BUDGET_BYTES: "1" }))).toThrow(
      /CONTEXT_BUDGET_BYTES must be an integer between 1024 and 100000000/,
    );
  });

  it("explains missing OpenAI settings without leaking secrets", () => {
    expect(() =>
      resolveModel("openai:gpt-test", readModelSettings({ OPENAI_API_KEY: API_KEY })),
    ).toThrow(/OPENAI_BASE_URL/);
    expect(() =>
      resolveModel("openai:gpt-test", readModelSettings({ OPENAI_BASE_URL: BASE_URL })),
    ).toThrow(/OPENAI_API_KEY/);
    expect(() =>
      resolveModel(
        "openai:gpt-test",
        readModelSettings({ OPENAI_BASE_URL: "not a url", OPENAI_API_KEY: API_KEY }),
      ),
    ).toThrow(/http\(s\) URL/);
    try {
      resolveModel(
        "openai:gpt-test",
        readModelSettings({ OPENAI_BASE_URL: "ftp://x", OPENAI_API_KEY: API_KEY }),
      );
    } catch (error) {
      expect(String(error)).not.toContain(API_KEY);
    }
  });

  it("builds a Workers AI model from a binding, and explains a missing one", () => {
    const fakeAi = { run: async () => ({ response: "hi" }) } as unknown as Ai;
    const model = resolveModel(
      "workers-ai:@cf/meta/llama-3.1-8b-instruct",
      readModelSettings({ AI: fakeAi }),
    );
    expect(model.specificationVersion).toBe("v4");
    expect(model.provider).toBe("workersai.chat");
    expect(model.modelId).toBe("@cf/meta/llama-3.1-8b-instruct");
    expect(() =>
      resolveModel("workers-ai:@cf/meta/llama-3.1-8b-instruct", readModelSettings({})),
    ).toThrow(/Workers AI binding AI/);
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
