/**
 * Shared by the model-layer tests (test/unit/models-*.test.ts, test/sessions/openai.test.ts):
 * call options for a prompt, a stream collector that records deltas, unwrapping an expected
 * ModelError, and the chat-completions SSE frames an OpenAI-compatible server streams.
 */
import type {
  LanguageModelV4,
  LanguageModelV4CallOptions,
  LanguageModelV4Prompt,
  LanguageModelV4StreamPart,
} from "@ai-sdk/provider";
import { expect } from "vitest";
import { collectStream, ModelError } from "../../src/sessions/models/collect";

export function user(text: string): LanguageModelV4Prompt[number] {
  return { role: "user", content: [{ type: "text", text }] };
}

export function call(
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

export async function readAll(
  stream: ReadableStream<LanguageModelV4StreamPart>,
): Promise<LanguageModelV4StreamPart[]> {
  const parts: LanguageModelV4StreamPart[] = [];
  for await (const part of stream) parts.push(part);
  return parts;
}

export async function collect(model: LanguageModelV4, options: LanguageModelV4CallOptions) {
  const deltas: string[] = [];
  const result = await collectStream(model, options, (delta) => {
    deltas.push(delta);
  });
  return { ...result, deltas };
}

export async function modelError(promise: Promise<unknown>): Promise<ModelError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ModelError);
    return error as ModelError;
  }
  throw new Error("expected a ModelError");
}

/** A model whose stream is built by the test. */
export function streamModel(
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

/** One chat-completions SSE frame (`data: {…chat.completion.chunk…}`), as OpenAI streams them. */
export function chatCompletionChunk(
  delta: Record<string, unknown>,
  finishReason: string | null = null,
): string {
  return `data: ${JSON.stringify({
    id: "chatcmpl-123",
    object: "chat.completion.chunk",
    created: 1_760_000_000,
    model: "gpt-test",
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
  })}\n\n`;
}
