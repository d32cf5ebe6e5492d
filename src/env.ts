/**
 * The worker's bindings and settings, and the one place where string settings from
 * wrangler.toml vars are parsed (with zod, so a typo fails loudly instead of becoming NaN).
 */
import { z } from "zod";
import type { SessionAgent } from "./sessions/session-agent";
import type { StreamDurableObject } from "./streams/stream-do";

export interface Env {
  STREAMS: DurableObjectNamespace<StreamDurableObject>;
  SESSIONS: DurableObjectNamespace<SessionAgent>;
  DB: D1Database;
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
  LONG_POLL_TIMEOUT_MS?: string;
  SSE_MAX_DURATION_MS?: string;
  /** Comma-separated bindings that callables (subscriptions) may target. */
  CALLABLE_BINDINGS?: string;
  /** Local development only: let webhooks target loopback addresses over http. */
  ALLOW_LOOPBACK_WEBHOOKS?: string;
  DELIVERY_RETRY_BASE_MS?: string;
  DELIVERY_RETRY_MAX_MS?: string;
  /** Local development key (from `.dev.vars`): acts as tenant DEV_TENANT_ID. */
  DEV_API_KEY?: string;
  /** The tenant the dev key belongs to (default `dev`). */
  DEV_TENANT_ID?: string;
  /** Secret guarding the /admin routes; when unset those routes answer 404. */
  ADMIN_TOKEN?: string;
  /**
   * TEST ONLY: requests without an Authorization header act as this tenant. Used by the
   * conformance run and the workerd tests; never set it in wrangler.toml, .dev.vars or a
   * deployment.
   */
  INSECURE_DEFAULT_TENANT?: string;
}

const settingsSchema = z.object({
  LONG_POLL_TIMEOUT_MS: z.coerce.number().int().min(1).max(300_000).default(20_000),
  SSE_MAX_DURATION_MS: z.coerce.number().int().min(100).max(3_600_000).default(60_000),
  DELIVERY_RETRY_BASE_MS: z.coerce.number().int().min(1).max(3_600_000).default(1_000),
  DELIVERY_RETRY_MAX_MS: z.coerce.number().int().min(1).max(86_400_000).default(300_000),
  MODEL_RETRY_BASE_MS: z.coerce.number().int().min(1).max(600_000).default(1_000),
});
export type Settings = z.infer<typeof settingsSchema>;

export function readSettings(env: Env): Settings {
  return settingsSchema.parse(env);
}
