/**
 * Session tokens: what a browser holds instead of a tenant API key. A server that has the key
 * mints a short-lived token for ONE session and some of the scopes read / write / approve;
 * the browser sends it as `Authorization: Bearer <token>` (or `?token=` on the event route,
 * for EventSource). A token is a JWT signed with HMAC-SHA256 (hono/jwt) under the secret
 * SESSION_TOKEN_SECRET; its claims name the tenant, the session, the scopes, the expiry, a
 * unique id (jti) and the session's token generation. Revocation: the session keeps a
 * generation counter; `POST /v1/sessions/:id/tokens/revoke` bumps it, and a token whose
 * generation is not the current one is refused. Deleting the session or rotating the secret
 * also ends every token.
 *
 * Error messages never contain the token (hono's JWT errors do, so they are not passed on).
 * The secret is imported as an HMAC key once per distinct secret (`signingKey`), not on every
 * request; a CryptoKey is a value, not an I/O object, so it may be kept across requests.
 */
import { sign, verify } from "hono/jwt";
import { ulid } from "ulidx";
import { z } from "zod";
import type { Env } from "../env";
import { type DomainError, notConfigured, unauthorized } from "../errors/domain";

export const TOKEN_SCOPES = ["read", "write", "approve"] as const;
export type TokenScope = (typeof TOKEN_SCOPES)[number];

/** Tokens live at most an hour: short enough that a leaked one expires soon. */
export const MAX_TOKEN_TTL_SECONDS = 3600;
export const DEFAULT_TOKEN_TTL_SECONDS = 900;
/** A shorter secret is a configuration error (HS256 wants at least 256 bits of key). */
export const MIN_SECRET_LENGTH = 32;

const AUDIENCE = "durable-agent-sessions:session";

export const mintTokenSchema = z.strictObject({
  scopes: z
    .array(z.enum(TOKEN_SCOPES))
    .min(1)
    .max(TOKEN_SCOPES.length)
    .refine((scopes) => new Set(scopes).size === scopes.length, "scopes must not repeat"),
  ttlSeconds: z
    .number()
    .int()
    .min(10)
    .max(MAX_TOKEN_TTL_SECONDS)
    .default(DEFAULT_TOKEN_TTL_SECONDS),
});

const claimsSchema = z.object({
  aud: z.literal(AUDIENCE),
  ten: z.string().min(1),
  sid: z.string().min(1),
  scp: z.array(z.enum(TOKEN_SCOPES)).min(1),
  gen: z.number().int().nonnegative(),
  jti: z.string().min(1),
  iat: z.number().int(),
  exp: z.number().int(),
});

export interface SessionTokenClaims {
  tenant: string;
  sessionId: string;
  scopes: TokenScope[];
  /** The session's token generation when the token was minted (see revocation above). */
  generation: number;
  jti: string;
  expiresAt: number;
}

export interface MintedToken {
  token: string;
  expiresAt: string;
  scopes: TokenScope[];
}

/** A 401 whose challenge says the token itself is bad (RFC 6750 `invalid_token`). */
export function invalidToken(message: string): DomainError {
  return unauthorized(message, "invalid_token");
}

/** The signing secret, or a 503 when it is not configured (or too short to be safe). */
export function tokenSecret(env: Pick<Env, "SESSION_TOKEN_SECRET">): string {
  const secret = env.SESSION_TOKEN_SECRET;
  if (!secret || secret.length < MIN_SECRET_LENGTH) {
    throw notConfigured(
      `session tokens need the secret SESSION_TOKEN_SECRET (at least ${MIN_SECRET_LENGTH} characters; wrangler secret put SESSION_TOKEN_SECRET)`,
    );
  }
  return secret;
}

const HMAC = { name: "HMAC", hash: "SHA-256" } as const;
const signingKeys = new Map<string, Promise<CryptoKey>>();
const MAX_SIGNING_KEYS = 4;

/** The secret as an HS256 key, imported once per distinct secret (bounded). */
function signingKey(secret: string): Promise<CryptoKey> {
  const known = signingKeys.get(secret);
  if (known !== undefined) return known;
  const key = crypto.subtle.importKey("raw", new TextEncoder().encode(secret), HMAC, false, [
    "sign",
    "verify",
  ]);
  if (signingKeys.size >= MAX_SIGNING_KEYS) {
    signingKeys.delete(signingKeys.keys().next().value as string);
  }
  signingKeys.set(secret, key);
  // A failed import is not remembered: the next request tries again.
  key.catch(() => signingKeys.delete(secret));
  return key;
}

/** True when a bearer credential has the shape of a JWT (API keys never contain dots). */
export function looksLikeToken(credential: string): boolean {
  return /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(credential);
}

export async function mintSessionToken(
  secret: string,
  input: {
    tenant: string;
    sessionId: string;
    scopes: TokenScope[];
    ttlSeconds: number;
    generation: number;
  },
  now = Date.now(),
): Promise<MintedToken> {
  const iat = Math.floor(now / 1000);
  const exp = iat + input.ttlSeconds;
  const claims: z.infer<typeof claimsSchema> = {
    aud: AUDIENCE,
    ten: input.tenant,
    sid: input.sessionId,
    scp: [...input.scopes],
    gen: input.generation,
    jti: ulid(now),
    iat,
    exp,
  };
  const token = await sign(claims, await signingKey(secret), "HS256");
  return { token, expiresAt: new Date(exp * 1000).toISOString(), scopes: claims.scp };
}

/** Verifies signature, audience and expiry; any failure is a 401 that does not echo the token. */
export async function verifySessionToken(
  token: string,
  secret: string,
): Promise<SessionTokenClaims> {
  let payload: unknown;
  try {
    payload = await verify(token, await signingKey(secret), { alg: "HS256", aud: AUDIENCE });
  } catch (error) {
    const name = (error as Error)?.name ?? "";
    if (name === "JwtTokenExpired") throw invalidToken("session token expired");
    throw invalidToken("invalid session token");
  }
  const claims = claimsSchema.safeParse(payload);
  if (!claims.success) throw invalidToken("invalid session token");
  const c = claims.data;
  return {
    tenant: c.ten,
    sessionId: c.sid,
    scopes: c.scp,
    generation: c.gen,
    jti: c.jti,
    expiresAt: c.exp * 1000,
  };
}
