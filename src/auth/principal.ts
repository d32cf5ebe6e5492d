/**
 * Who a /v1 request acts for: a tenant API key (everything of that tenant) or a session
 * token (one session, some scopes). Credentials come from `Authorization: Bearer`, and a
 * session token may also come as `?token=` on the session's event route only, because a
 * browser's EventSource cannot set headers; query strings end up in access logs, so no other
 * route takes one and an API key is never accepted there. Session tokens reach only the
 * session routes that name a token scope; each of those then checks the session, scope and
 * revocation (src/http/session-access.ts). Every tenant-level route answers 403 to a token.
 * Which routes those are is read from the routes themselves by the caller (`RouteAccess`).
 */
import type { Env } from "../env";
import { forbidden, invalidInput } from "../errors/domain";
import { type AuthEnv, authenticate, bearerToken } from "./authenticate";
import {
  invalidToken,
  looksLikeToken,
  type SessionTokenClaims,
  tokenSecret,
  verifySessionToken,
} from "./session-tokens";

export type Principal =
  | { kind: "api-key"; tenant: string }
  | { kind: "session-token"; tenant: string; token: SessionTokenClaims };

/** What the request's path admits, as its routes declare it. */
export interface RouteAccess {
  /** Some route on this path admits session tokens (with a scope it checks). */
  sessionTokens: boolean;
  /** A GET route on this path takes a session token as `?token=` (EventSource). */
  queryToken: boolean;
}

async function fromToken(
  token: string,
  env: Pick<Env, "SESSION_TOKEN_SECRET">,
): Promise<Principal> {
  let secret: string;
  try {
    secret = tokenSecret(env);
  } catch {
    throw invalidToken("session tokens are not enabled on this deployment");
  }
  const claims = await verifySessionToken(token, secret);
  return { kind: "session-token", tenant: claims.tenant, token: claims };
}

/** `url`: the request's URL when the caller has already parsed it. */
export async function authenticateRequest(
  request: Request,
  env: AuthEnv & Pick<Env, "SESSION_TOKEN_SECRET">,
  route: RouteAccess,
  url = new URL(request.url),
): Promise<Principal> {
  const header = request.headers.get("authorization");
  const inQuery = url.searchParams.getAll("token");
  let principal: Principal;
  if (inQuery.length > 0) {
    const readsEvents = route.queryToken && (request.method === "GET" || request.method === "HEAD");
    if (!readsEvents) {
      throw invalidInput(
        "?token= is accepted only on GET /v1/sessions/:id/events (for EventSource); send Authorization: Bearer <token> instead",
      );
    }
    if (inQuery.length > 1 || header !== null) {
      throw invalidInput("send one credential: either ?token= or an Authorization header");
    }
    if (!looksLikeToken(inQuery[0]!)) {
      throw invalidToken("?token= takes a session token (never an API key)");
    }
    principal = await fromToken(inQuery[0]!, env);
  } else {
    const credential = header === null ? null : bearerToken(header);
    principal =
      credential !== null && looksLikeToken(credential)
        ? await fromToken(credential, env)
        : { kind: "api-key", tenant: await authenticate(header, env) };
  }
  if (principal.kind === "session-token" && !route.sessionTokens) {
    throw forbidden(
      "session tokens reach only their session's routes; this route needs an API key",
    );
  }
  return principal;
}
