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
import { findTenantByKey } from "../db/tenants";
import type { Env } from "../env";
import { ApiError } from "../http/errors";
import { secretsEqual } from "./secrets";

export type AuthEnv = Pick<Env, "DB" | "DEV_API_KEY" | "DEV_TENANT_ID" | "INSECURE_DEFAULT_TENANT">;

const REALM = 'Bearer realm="durable-agent-sessions"';
const MAX_KEY_LENGTH = 512;

function unauthorized(message: string, invalidToken: boolean): ApiError {
  return new ApiError(401, "unauthorized", message, undefined, {
    "www-authenticate": invalidToken ? `${REALM}, error="invalid_token"` : REALM,
  });
}

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
    throw unauthorized("missing Authorization: Bearer <api key> header", false);
  }
  const key = bearerToken(authorization);
  if (key === null || key.length > MAX_KEY_LENGTH) {
    throw unauthorized("malformed Authorization header: expected Bearer <api key>", true);
  }
  if (env.DEV_API_KEY && (await secretsEqual(key, env.DEV_API_KEY))) {
    return env.DEV_TENANT_ID || "dev";
  }
  const tenant = await findTenantByKey(createDb(env.DB), key);
  if (tenant === null) throw unauthorized("invalid or revoked API key", true);
  return tenant;
}
