/**
 * Per-route access to one session. API keys pass (the tenant is theirs); a session token
 * passes only for its own session (another session reads as 404, like another tenant's), with
 * the scope the route names (else 403), and only while the session's token generation is the
 * one it was minted with (else 401 revoked; 404 once the session is deleted). Routes that name no
 * scope (delete, tokens) are API-key only. Each route's scope is stated once, by the `access`
 * it uses (src/http/sessions.ts), and /openapi.json reads it from there.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { RouterRoute } from "hono/types";
import { z } from "zod";
import type { RouteAccess } from "../auth/principal";
import { invalidToken, type TokenScope } from "../auth/session-tokens";
import { forbidden, notFound } from "../errors/domain";
import { type RpcResult, unwrap } from "../rpc/result";
import { type SessionAgentStub, sessionAgentStub } from "../sessions/agent-rpc";
import { pathIndex } from "./allow";
import type { AppEnv } from "./app";
import { partOf, recordPart } from "./route-docs";

export function agent(c: Context<AppEnv>, id: string): SessionAgentStub {
  return sessionAgentStub(c.env.SESSIONS, c.get("tenant"), id);
}

/** Calls the session's object; its result envelope becomes the value or a DomainError here. */
export const rpc = <T>(call: () => Promise<RpcResult<T>>): Promise<T> => unwrap(call());

export function access(scope: TokenScope | null): MiddlewareHandler<AppEnv> {
  return recordPart<MiddlewareHandler<AppEnv>>(
    async (c, next) => {
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
    },
    { kind: "access", scope },
  );
}

/**
 * What each path admits, read from the route table: session tokens reach the paths of routes
 * that check a token scope (`access("read" | "write" | "approve")`), and `?token=` is taken
 * where a GET route's query schema declares `token` (the events route, for EventSource).
 * Each answer is worked out when it is read: a request with an API key and no `?token=`
 * (every turn of a server-side client) reads neither.
 */
export function routeAccess(routes: readonly RouterRoute[]): (pathname: string) => RouteAccess {
  const scoped = routes.filter((r) => {
    const part = partOf(r.handler);
    return part?.kind === "access" && part.scope !== null;
  });
  const queryToken = routes.filter((r) => {
    const part = partOf(r.handler);
    return (
      r.method === "GET" &&
      part?.kind === "input" &&
      part.input.target === "query" &&
      part.input.schema instanceof z.ZodObject &&
      Object.hasOwn(part.input.schema.shape, "token")
    );
  });
  const sessionTokens = pathIndex(scoped);
  const takesQueryToken = pathIndex(queryToken);
  return (pathname) => ({
    get sessionTokens() {
      return sessionTokens(pathname);
    },
    get queryToken() {
      return takesQueryToken(pathname);
    },
  });
}
