/**
 * Resolves `Authorization: Bearer <key>` to a tenant id. The local development key from the
 * environment (`DEV_API_KEY` → `DEV_TENANT_ID`) is tried first, then the API keys in D1.
 * Anything else is a 401 with `WWW-Authenticate: Bearer`.
 *
 * `INSECURE_DEFAULT_TENANT` is a test-only setting: when it is set, a request that carries
 * no Authorization header at all acts as that tenant (a request with a bad key is still
 * rejected). It exists so that the Durable Streams conformance suite, which cannot send
 * credentials, can run against the app. Never set it in wrangler.toml, .dev.vars or a
 * deployment.
 */
import { createDb } from "../db/client";
import { findTenantByKey, parseApiKey } from "../db/tenants";
import type { Env } from "../env";
import { unauthorized } from "../errors/domain";
import { digestMatches, sha256 } from "../secrets";

export type AuthEnv = Pick<Env, "DB" | "DEV_API_KEY" | "DEV_TENANT_ID" | "INSECURE_DEFAULT_TENANT">;

const MAX_KEY_LENGTH = 512;

/** The bearer token of an Authorization header, or null when it is not a Bearer header. */
export function bearerToken(header: string): string | null {
  const match = /^Bearer +([\x21-\x7e]+) *$/i.exec(header);
  return match ? match[1]! : null;
}

export async function authenticate(
  authorization: string | null | undefined,
  env: AuthEnv,
): Promise<string> {
  if (authorization === undefined || authorization === null) {
    if (env.INSECURE_DEFAULT_TENANT) return env.INSECURE_DEFAULT_TENANT;
    throw unauthorized("missing Authorization: Bearer <api key> header");
  }
  const key = bearerToken(authorization);
  if (key === null || key.length > MAX_KEY_LENGTH) {
    throw unauthorized(
      "malformed Authorization header: expected Bearer <api key>",
      "invalid_token",
    );
  }
  // The presented key is hashed once per request: for the dev key's comparison and the D1 lookup.
  let digest: Uint8Array | undefined;
  if (env.DEV_API_KEY) {
    digest = await sha256(key);
    if (await digestMatches(digest, env.DEV_API_KEY)) return env.DEV_TENANT_ID || "dev";
  }
  const cached = keyCache.get(key);
  if (cached && cached.until > Date.now()) return cached.tenant;
  const tenant = await findTenantByKey(createDb(env.DB), key, digest);
  if (tenant === null) throw unauthorized("invalid or revoked API key", "invalid_token");
  if (keyCache.size >= KEY_CACHE_MAX) keyCache.delete(keyCache.keys().next().value!);
  keyCache.set(key, { tenant, until: Date.now() + KEY_CACHE_TTL_MS });
  return tenant;
}

/**
 * Valid keys are remembered per isolate for a short while, so that a burst of requests does
 * not query D1 (and hash) for every one of them. The price: a revoked key keeps working for
 * at most KEY_CACHE_TTL_MS in isolates that saw it. Only successful lookups are cached.
 */
const KEY_CACHE_TTL_MS = 30_000;
const KEY_CACHE_MAX = 1_000;
const keyCache = new Map<string, { tenant: string; until: number }>();

/** Drops cached lookups of a revoked key (in this isolate; others expire within the TTL). */
export function forgetKey(prefix: string): void {
  for (const key of keyCache.keys()) if (parseApiKey(key)?.prefix === prefix) keyCache.delete(key);
}
