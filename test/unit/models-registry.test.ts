/**
 * The model registry (src/sessions/models/registry.ts): model specs, defaults, and the
 * OpenAI-compatible provider it resolves, against a stubbed fetch speaking real
 * chat-completions SSE.
 */
import type { LanguageModelV4Prompt } from "@ai-sdk/provider";
import { afterEach, describe, expect, it, vi } from "vitest";
import { readModelSettings, SettingsError } from "../../src/env";
import { collectStream, retryDelayMs } from "../../src/sessions/models/collect";
import {
  CONTEXT_BUDGETS,
  contextBudgetBytes,
  DEFAULT_MODEL,
  ModelConfigError,
  modelSpecSchema,
  parseModelSpec,
  resolveModel,
} from "../../src/sessions/models/registry";
import { call, chatCompletionChunk as chunk, collect, modelError, user } from "../support/models";
import { platformFake } from "../support/platform-fakes";

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
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
    const fakeAi = platformFake<Ai>({ run: async () => ({ response: "hi" }) });
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
