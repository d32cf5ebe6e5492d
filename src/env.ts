/**
 * The worker's bindings and settings, and the one place where string settings from
 * wrangler.toml vars are parsed (with zod, so a typo fails loudly instead of becoming NaN).
 */
import { z } from "zod";
import type { StreamDurableObject } from "./streams/stream-do";

export interface Env {
  STREAMS: DurableObjectNamespace<StreamDurableObject>;
  DB: D1Database;
  LONG_POLL_TIMEOUT_MS?: string;
  SSE_MAX_DURATION_MS?: string;
  /** Comma-separated bindings that callables (subscriptions) may target. */
  CALLABLE_BINDINGS?: string;
  /** Local development only: let webhooks target loopback addresses over http. */
  ALLOW_LOOPBACK_WEBHOOKS?: string;
  DELIVERY_RETRY_BASE_MS?: string;
  DELIVERY_RETRY_MAX_MS?: string;
}

const settingsSchema = z.object({
  LONG_POLL_TIMEOUT_MS: z.coerce.number().int().min(1).max(300_000).default(20_000),
  SSE_MAX_DURATION_MS: z.coerce.number().int().min(100).max(3_600_000).default(60_000),
  DELIVERY_RETRY_BASE_MS: z.coerce.number().int().min(1).max(3_600_000).default(1_000),
  DELIVERY_RETRY_MAX_MS: z.coerce.number().int().min(1).max(86_400_000).default(300_000),
});
export type Settings = z.infer<typeof settingsSchema>;

export function readSettings(env: Env): Settings {
  return settingsSchema.parse(env);
}
