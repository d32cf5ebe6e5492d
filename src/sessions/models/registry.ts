/**
 * Model selection by configuration. A model spec is a string:
 *
 * - `scripted` — the offline deterministic model (default; see scripted.ts);
 * - `openai:<model-id>` — an OpenAI-compatible chat-completions endpoint (streaming) at
 *   `OPENAI_BASE_URL`, authenticated with `OPENAI_API_KEY`;
 * - `workers-ai:<model-id>` — Workers AI through the `AI` binding (e.g.
 *   `workers-ai:@cf/meta/llama-3.1-8b-instruct`).
 *
 * The default spec is `DEFAULT_MODEL` (`scripted`) unless env `DEFAULT_MODEL` overrides it.
 * Configuration problems throw a `ModelConfigError` naming the missing setting (never its value).
 */
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import type { LanguageModelV4 } from "@ai-sdk/provider";
import { createWorkersAI } from "workers-ai-provider";
import { z } from "zod";
import { createScriptedModel, scriptedDelayFromEnv } from "./scripted";

export interface ModelEnv {
  /** Delay between the scripted model's text deltas, in ms (default 0). */
  SCRIPTED_MODEL_DELAY_MS?: string;
  /** Base URL of an OpenAI-compatible API, e.g. `https://api.openai.com/v1`. */
  OPENAI_BASE_URL?: string;
  /** Secret: the bearer token for `OPENAI_BASE_URL`. */
  OPENAI_API_KEY?: string;
  /** The Workers AI binding. */
  AI?: Ai;
  /** The spec used when a session names no model (default `scripted`). */
  DEFAULT_MODEL?: string;
  /** Context budget in bytes of prompt text, for every model (defaults per provider below). */
  CONTEXT_BUDGET_BYTES?: string;
}

/**
 * Default context budgets, in UTF-8 bytes of prompt (a rough 4 bytes per token). The scripted
 * model's is small so that tests and local sessions reach it and exercise compaction.
 */
export const CONTEXT_BUDGETS = {
  scripted: 32 * 1024,
  openai: 400_000,
  "workers-ai": 24_000,
} as const;

/** The context budget of a model spec: env `CONTEXT_BUDGET_BYTES`, else the provider's default. */
export function contextBudgetBytes(spec: string, env: Pick<ModelEnv, "CONTEXT_BUDGET_BYTES">) {
  const configured = env.CONTEXT_BUDGET_BYTES?.trim();
  if (configured) {
    const n = Number(configured);
    if (!Number.isInteger(n) || n < 1_024 || n > 100_000_000)
      throw new ModelConfigError(
        "CONTEXT_BUDGET_BYTES must be an integer between 1024 and 100000000",
      );
    return n;
  }
  return CONTEXT_BUDGETS[parseModelSpec(spec).provider];
}

export const DEFAULT_MODEL = "scripted";

const MODEL_ID = "[A-Za-z0-9@_][A-Za-z0-9@/._:+-]{0,199}";
const SPEC = new RegExp(`^(?:scripted|openai:${MODEL_ID}|workers-ai:${MODEL_ID})$`);

/** Validates a model spec string: `scripted`, `openai:<model-id>` or `workers-ai:<model-id>`. */
export const modelSpecSchema = z.string().trim().max(220).regex(SPEC, {
  message: "model must be `scripted`, `openai:<model-id>` or `workers-ai:<model-id>`",
});
export type ModelSpec = z.infer<typeof modelSpecSchema>;

export type ParsedModelSpec =
  | { provider: "scripted" }
  | { provider: "openai"; modelId: string }
  | { provider: "workers-ai"; modelId: string };

export class ModelConfigError extends Error {
  override readonly name = "ModelConfigError";
}

/** Parses a spec (throws `ModelConfigError` for an invalid one). */
export function parseModelSpec(spec: string): ParsedModelSpec {
  const result = modelSpecSchema.safeParse(spec);
  if (!result.success) {
    throw new ModelConfigError(
      `invalid model spec ${JSON.stringify(spec.slice(0, 100))}: ${result.error.issues[0]?.message ?? "invalid"}`,
    );
  }
  const value = result.data;
  if (value === "scripted") return { provider: "scripted" };
  const colon = value.indexOf(":");
  const provider = value.slice(0, colon) as "openai" | "workers-ai";
  return { provider, modelId: value.slice(colon + 1) };
}

/** The spec to use when none is given: env `DEFAULT_MODEL` (validated) or `scripted`. */
export function defaultModelSpec(env: Pick<ModelEnv, "DEFAULT_MODEL">): string {
  const configured = env.DEFAULT_MODEL?.trim();
  if (!configured) return DEFAULT_MODEL;
  const result = modelSpecSchema.safeParse(configured);
  if (!result.success) {
    throw new ModelConfigError(
      `DEFAULT_MODEL is not a valid model spec: ${result.error.issues[0]?.message}`,
    );
  }
  return result.data;
}

/** Builds the `LanguageModelV4` for a spec (undefined or empty → the default spec). */
export function resolveModel(spec: string | undefined, env: ModelEnv): LanguageModelV4 {
  const parsed = parseModelSpec(spec?.trim() ? spec : defaultModelSpec(env));
  switch (parsed.provider) {
    case "scripted": {
      let delayMs: number;
      try {
        delayMs = scriptedDelayFromEnv(env.SCRIPTED_MODEL_DELAY_MS);
      } catch (error) {
        throw new ModelConfigError((error as Error).message);
      }
      return createScriptedModel({ delayMs });
    }
    case "openai": {
      const baseURL = env.OPENAI_BASE_URL?.trim();
      const apiKey = env.OPENAI_API_KEY?.trim();
      if (!baseURL) {
        throw new ModelConfigError(
          `model "openai:${parsed.modelId}" needs OPENAI_BASE_URL (an OpenAI-compatible API base URL, e.g. https://api.openai.com/v1)`,
        );
      }
      if (!isHttpUrl(baseURL)) {
        throw new ModelConfigError("OPENAI_BASE_URL must be an http(s) URL");
      }
      if (!apiKey) {
        throw new ModelConfigError(
          `model "openai:${parsed.modelId}" needs the OPENAI_API_KEY secret (wrangler secret put OPENAI_API_KEY)`,
        );
      }
      const provider = createOpenAICompatible({
        name: "openai-compatible",
        baseURL: baseURL.replace(/\/+$/, ""),
        apiKey,
      });
      return provider.chatModel(parsed.modelId);
    }
    case "workers-ai": {
      if (!env.AI) {
        throw new ModelConfigError(
          `model "workers-ai:${parsed.modelId}" needs the Workers AI binding AI ([ai] binding = "AI" in wrangler.toml)`,
        );
      }
      return createWorkersAI({ binding: env.AI })(parsed.modelId);
    }
  }
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === "https:" || url.protocol === "http:";
  } catch {
    return false;
  }
}
