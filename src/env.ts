/**
 * The worker's bindings and settings, and the one place where string settings from
 * wrangler.toml vars are parsed (strictly, so a typo fails loudly instead of becoming NaN).
 * Callers receive typed settings. Each group is parsed once per `env` object. The numeric
 * `Settings` are read eagerly; model and callable settings are read where they are used, and
 * each model setting throws (a `SettingsError` naming the setting, never its value) only when
 * read, so a bad optional setting fails the sessions that need it, visibly, and nothing else.
 */
import { z } from "zod";
import { reservedMethod } from "./callables/descriptor";
import type { CallablePolicy } from "./callables/policy";
import type { SessionAgentNamespace } from "./sessions/agent-rpc";
import { DEFAULT_MODEL, modelSpecSchema } from "./sessions/models/registry";
import type { StreamNamespace } from "./streams/stream-rpc";

export interface Env {
  STREAMS: StreamNamespace;
  SESSIONS: SessionAgentNamespace;
  DB: D1Database;
  /** Static files (public/: the /docs script), served ahead of the worker by Workers Assets. */
  ASSETS?: Fetcher;
  /** Workers AI, for `workers-ai:<model>` sessions (configuration only; not available offline). */
  AI?: Ai;
  /** Model used when a session names none (default `scripted`). */
  DEFAULT_MODEL?: string;
  /** Delay between the scripted model's words, in ms (tests use it to catch a turn mid-stream). */
  SCRIPTED_MODEL_DELAY_MS?: string;
  /** OpenAI-compatible endpoint for `openai:<model>` sessions; the key is a secret. */
  OPENAI_BASE_URL?: string;
  OPENAI_API_KEY?: string;
  /** Context budget of every model in prompt bytes (default per provider, models/registry.ts). */
  CONTEXT_BUDGET_BYTES?: string;
  /** Base delay of the backoff between model request attempts (429/5xx), in ms. */
  MODEL_RETRY_BASE_MS?: string;
  /** Most UTF-8 bytes of one message (user text, tool result) a prompt carries (default 256 KiB). */
  MODEL_CONTENT_MAX_BYTES?: string;
  LONG_POLL_TIMEOUT_MS?: string;
  SSE_MAX_DURATION_MS?: string;
  /** Comma-separated `BINDING:method` pairs that callables (subscriptions) may call (callables/policy.ts). */
  CALLABLE_BINDINGS?: string;
  /** Local development only: let webhooks target loopback addresses over http. */
  ALLOW_LOOPBACK_WEBHOOKS?: string;
  DELIVERY_RETRY_BASE_MS?: string;
  DELIVERY_RETRY_MAX_MS?: string;
  /** Failed delivery attempts in a row after which a subscription is parked (default 10). */
  DELIVERY_MAX_ATTEMPTS?: string;
  /** How long a self-feeding SessionAgent's lease on its subscriptions lasts (streams/feed-leases.ts). */
  DELIVERY_FEED_LEASE_MS?: string;
  /** Local development key (from `.dev.vars`): acts as tenant DEV_TENANT_ID. */
  DEV_API_KEY?: string;
  /** The tenant the dev key belongs to (default `dev`). */
  DEV_TENANT_ID?: string;
  /**
   * Secret (HMAC-SHA256 key, at least 32 characters) that signs session tokens for browsers
   * (`POST /v1/sessions/:id/tokens`). Set with `wrangler secret put SESSION_TOKEN_SECRET`;
   * rotating it ends every token. Unset: minting answers 503 and tokens are refused.
   */
  SESSION_TOKEN_SECRET?: string;
  /**
   * Comma-separated origins allowed to call the API from a browser (CORS), e.g.
   * `https://app.example.com,https://admin.example.com`. Unset or empty: any origin (`*`,
   * without credentials), meant for local development.
   */
  CORS_ORIGINS?: string;
  /** Secret guarding the /admin routes; when unset those routes answer 404. */
  ADMIN_TOKEN?: string;
  /**
   * TEST ONLY: requests without an Authorization header act as this tenant. Used by the
   * conformance run and the workerd tests; never set it in wrangler.toml, .dev.vars or a
   * deployment.
   */
  INSECURE_DEFAULT_TENANT?: string;
  /** `"true"`: log each hop of a turn as a JSON line (src/trace.ts; `npm run bench:trace`). */
  TRACE_TURNS?: string;
}

const settingsSchema = z.object({
  LONG_POLL_TIMEOUT_MS: z.coerce.number().int().min(1).max(300_000).default(20_000),
  SSE_MAX_DURATION_MS: z.coerce.number().int().min(100).max(3_600_000).default(60_000),
  DELIVERY_RETRY_BASE_MS: z.coerce.number().int().min(1).max(3_600_000).default(1_000),
  DELIVERY_RETRY_MAX_MS: z.coerce.number().int().min(1).max(86_400_000).default(300_000),
  DELIVERY_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(1_000).default(10),
  DELIVERY_FEED_LEASE_MS: z.coerce.number().int().min(10).max(60_000).default(5_000),
  MODEL_RETRY_BASE_MS: z.coerce.number().int().min(1).max(600_000).default(1_000),
  MODEL_CONTENT_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1_024)
    .max(64 * 1024 * 1024)
    .default(256 * 1024),
});
export type Settings = z.infer<typeof settingsSchema>;

export function readSettings(env: Env): Settings {
  return settingsSchema.parse(env);
}

/** A setting that does not parse; the message names the setting, never its value. */
export class SettingsError extends Error {
  override readonly name = "SettingsError";
}

/** The model settings (sessions/models/registry.ts); reading an invalid one throws. */
export interface ModelSettings {
  /** `DEFAULT_MODEL` (a valid model spec), or `scripted` when unset. */
  readonly defaultModel: string;
  /** `SCRIPTED_MODEL_DELAY_MS`: delay between the scripted model's text deltas (default 0). */
  readonly scriptedDelayMs: number;
  /** `CONTEXT_BUDGET_BYTES`: every model's context budget; unset: the provider's default. */
  readonly contextBudgetBytes: number | undefined;
  /** `OPENAI_BASE_URL`, an http(s) URL without trailing slashes. */
  readonly openaiBaseUrl: string | undefined;
  /** `OPENAI_API_KEY` (a secret). */
  readonly openaiApiKey: string | undefined;
  readonly ai: Ai | undefined;
}

type ModelEnv = Pick<
  Env,
  | "DEFAULT_MODEL"
  | "SCRIPTED_MODEL_DELAY_MS"
  | "CONTEXT_BUDGET_BYTES"
  | "OPENAI_BASE_URL"
  | "OPENAI_API_KEY"
  | "AI"
>;

const modelSettings = new WeakMap<object, ModelSettings>();

export function readModelSettings(env: ModelEnv): ModelSettings {
  let settings = modelSettings.get(env);
  if (!settings) {
    settings = parsedOnRead<ModelSettings>({
      defaultModel: () => {
        const configured = text(env.DEFAULT_MODEL);
        if (configured === undefined) return DEFAULT_MODEL;
        const result = modelSpecSchema.safeParse(configured);
        if (!result.success) {
          throw new SettingsError(
            `DEFAULT_MODEL is not a valid model spec: ${result.error.issues[0]?.message}`,
          );
        }
        return result.data;
      },
      scriptedDelayMs: () => integer("SCRIPTED_MODEL_DELAY_MS", env, 0, 60_000) ?? 0,
      contextBudgetBytes: () => integer("CONTEXT_BUDGET_BYTES", env, 1_024, 100_000_000),
      openaiBaseUrl: () => {
        const url = text(env.OPENAI_BASE_URL);
        if (url !== undefined && !isHttpUrl(url)) {
          throw new SettingsError("OPENAI_BASE_URL must be an http(s) URL");
        }
        return url?.replace(/\/+$/, "");
      },
      openaiApiKey: () => text(env.OPENAI_API_KEY),
      ai: () => env.AI,
    });
    modelSettings.set(env, settings);
  }
  return settings;
}

const callablePolicies = new Map<string, Map<string, Set<string>>>();

/** The callable policy (callables/policy.ts) from CALLABLE_BINDINGS and ALLOW_LOOPBACK_WEBHOOKS. */
export function readCallablePolicy(
  env: Pick<Env, "CALLABLE_BINDINGS" | "ALLOW_LOOPBACK_WEBHOOKS">,
): CallablePolicy {
  const raw = env.CALLABLE_BINDINGS ?? "";
  let allowedMethods = callablePolicies.get(raw);
  if (!allowedMethods) {
    allowedMethods = parseAllowlist(raw);
    callablePolicies.set(raw, allowedMethods);
  }
  return { allowedMethods, allowLoopbackWebhooks: env.ALLOW_LOOPBACK_WEBHOOKS === "true" };
}

const ENTRY = /^([A-Z][A-Z0-9_]{0,63}):([a-zA-Z][a-zA-Z0-9_]{0,63})$/;

/**
 * Parses CALLABLE_BINDINGS: comma-separated `BINDING:method` entries (a binding may appear
 * once per method). A malformed entry or a built-in method name is a configuration error,
 * thrown loudly rather than silently ignored.
 */
export function parseAllowlist(raw: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const entry of raw.split(",").map((e) => e.trim())) {
    if (entry === "") continue;
    const m = ENTRY.exec(entry);
    if (!m) {
      throw new SettingsError(
        `CALLABLE_BINDINGS entry ${JSON.stringify(entry)} must be BINDING:method (e.g. SESSIONS:deliver)`,
      );
    }
    const binding = m[1]!;
    const method = m[2]!;
    if (reservedMethod(method)) {
      throw new SettingsError(
        `CALLABLE_BINDINGS entry ${entry}: ${method} is a built-in, not a callable method`,
      );
    }
    const methods = out.get(binding) ?? new Set<string>();
    methods.add(method);
    out.set(binding, methods);
  }
  return out;
}

/** The trimmed value, or undefined when unset or blank. */
function text(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed ? trimmed : undefined;
}

function integer<K extends keyof Env>(
  name: K & string,
  env: Partial<Record<K, string>>,
  min: number,
  max: number,
): number | undefined {
  const value = text(env[name]);
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new SettingsError(`${name} must be an integer between ${min} and ${max}`);
  }
  return n;
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === "https:" || url.protocol === "http:";
  } catch {
    return false;
  }
}

/** An object whose properties are parsed on first read (then kept, errors included). */
function parsedOnRead<T extends object>(parsers: { [K in keyof T]: () => T[K] }): T {
  const out = {} as T;
  for (const key of Object.keys(parsers) as (keyof T)[]) {
    let parsed: { value: T[typeof key] } | { error: unknown } | undefined;
    Object.defineProperty(out, key, {
      enumerable: true,
      get() {
        if (!parsed) {
          try {
            parsed = { value: parsers[key]() };
          } catch (error) {
            parsed = { error };
          }
        }
        if ("error" in parsed) throw parsed.error;
        return parsed.value;
      },
    });
  }
  return out;
}
