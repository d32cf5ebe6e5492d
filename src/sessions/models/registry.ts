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
 * The settings arrive parsed (`ModelSettings`, env.ts); a missing one throws a
 * `ModelConfigError` naming it (never its value), an invalid one env.ts's `SettingsError`.
 */
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import type { LanguageModelV4 } from "@ai-sdk/provider";
import { createWorkersAI } from "workers-ai-provider";
import { z } from "zod";
import type { ModelSettings } from "../../env";
import { createScriptedModel } from "./scripted";

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
export function contextBudgetBytes(
  spec: string,
  settings: Pick<ModelSettings, "contextBudgetBytes">,
): number {
  return settings.contextBudgetBytes ?? CONTEXT_BUDGETS[parseModelSpec(spec).provider];
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

/** Builds the `LanguageModelV4` for a spec (undefined or empty → the default spec). */
export function resolveModel(spec: string | undefined, settings: ModelSettings): LanguageModelV4 {
  const parsed = parseModelSpec(spec?.trim() ? spec : settings.defaultModel);
  switch (parsed.provider) {
    case "scripted":
      return createScriptedModel({ delayMs: settings.scriptedDelayMs });
    case "openai": {
      const baseURL = settings.openaiBaseUrl;
      const apiKey = settings.openaiApiKey;
      if (!baseURL) {
        throw new ModelConfigError(
          `model "openai:${parsed.modelId}" needs OPENAI_BASE_URL (an OpenAI-compatible API base URL, e.g. https://api.openai.com/v1)`,
        );
      }
      if (!apiKey) {
        throw new ModelConfigError(
          `model "openai:${parsed.modelId}" needs the OPENAI_API_KEY secret (wrangler secret put OPENAI_API_KEY)`,
        );
      }
      const provider = createOpenAICompatible({
        name: "openai-compatible",
        baseURL,
        apiKey,
      });
      return provider.chatModel(parsed.modelId);
    }
    case "workers-ai": {
      const ai = settings.ai;
      if (!ai) {
        throw new ModelConfigError(
          `model "workers-ai:${parsed.modelId}" needs the Workers AI binding AI ([ai] binding = "AI" in wrangler.toml)`,
        );
      }
      return createWorkersAI({ binding: ai })(parsed.modelId);
    }
  }
}
