/**
 * Per-route access to one session. API keys pass (the tenant is theirs); a session token
 * passes only for its own session (another session reads as 404, like another tenant's), with
 * the scope the route names (else 403), and only while the session's token generation is the
 * one it was minted with (else 401 revoked; 404 once the session is deleted). Routes that name no
 * scope (delete, tokens) are API-key only.
 *
 *   read    → GET /:id, GET /:id/events
 *   write   → POST /:id/messages, POST /:id/cancel
 *   approve → POST /:id/tool-calls/:toolCallId/decision
 */
import type { Context, MiddlewareHandler } from "hono";
import { forbidden } from "../auth/principal";
import { invalidToken, type TokenScope } from "../auth/session-tokens";
import { type RpcResult, unwrap } from "../rpc/result";
import { type SessionAgentStub, sessionAgentStub } from "../sessions/agent-rpc";
import type { AppEnv } from "./app";
import { notFound } from "./errors";

export function agent(c: Context<AppEnv>, id: string): SessionAgentStub {
  return sessionAgentStub(c.env.SESSIONS, c.get("tenant"), id);
}

/** Calls the session's object; its result envelope becomes the value or an ApiError here. */
export const rpc = <T>(call: () => Promise<RpcResult<T>>): Promise<T> => unwrap(call());

export function access(scope: TokenScope | null): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const principal = c.get("principal");
    if (principal.kind === "api-key") return next();
    if (scope === null) throw forbidden("this route needs an API key, not a session token");
    const id = c.req.param("id");
    if (id === undefined || principal.token.sessionId !== id) throw notFound("session not found");
    if (!principal.token.scopes.includes(scope)) {
      throw forbidden(`this session token lacks the "${scope}" scope`);
    }
    // 404 when the session was deleted (its tokens end with it) or is not the token's tenant's.
    const generation = await rpc(() => agent(c, id).tokenGeneration());
    if (generation !== principal.token.generation) throw invalidToken("session token revoked");
    return next();
  };
}
