/**
 * The worker's bindings and settings, and the one place where string settings from
 * wrangler.toml vars are parsed (with zod, so a typo fails loudly instead of becoming NaN).
 */
import { z } from "zod";
import type { SessionAgent } from "./sessions/session-agent";
import type { StreamNamespace } from "./streams/stream-rpc";

export interface Env {
  STREAMS: StreamNamespace;
  SESSIONS: DurableObjectNamespace<SessionAgent>;
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
