/**
 * Serves capnweb at `/v1/rpc`: an HTTP batch on POST, a WebSocket session on Upgrade.
 *
 * A capnweb WebSocket is held by this (stateless) worker invocation for as long as it is open:
 * it does not hibernate, and the objects a client holds live in memory until it disconnects.
 * So connections are bounded: one that receives nothing — not even a `ping()` heartbeat —
 * for `RPC_IDLE_TIMEOUT_MS` is closed (code 4408), as is one older than
 * `RPC_MAX_CONNECTION_MS`; each may hold at most `RPC_MAX_SUBSCRIPTIONS` live
 * subscriptions; a closed socket ends its subscriptions. Clients reconnect and resubscribe
 * after their last offset (src/client/rpc.ts does).
 */
import { newHttpBatchRpcResponse, newWebSocketRpcSession } from "capnweb";
import type { Env } from "../env";
import { forbidden, unsupportedOperation } from "../errors/domain";
import { errorResponse } from "../errors/http";
import { type RpcConnection, RpcGateway } from "./api";

const DEFAULTS = {
  idleTimeoutMs: 90_000,
  maxConnectionMs: 60 * 60_000,
  maxSubscriptions: 16,
};

/** Close code sent when a connection is closed for idling (or for its age). */
export const IDLE_CLOSE_CODE = 4408;

function setting(raw: string | undefined, fallback: number): number {
  const n = Number(raw);
  return raw !== undefined && Number.isFinite(n) && n > 0 ? n : fallback;
}

export function rpcResponse(
  request: Request,
  env: Env & {
    RPC_IDLE_TIMEOUT_MS?: string;
    RPC_MAX_CONNECTION_MS?: string;
    RPC_MAX_SUBSCRIPTIONS?: string;
  },
  fetch: (request: Request) => Promise<Response>,
  /** The worker's CORS allowlist (src/http/security.ts): `any`, or these origins. */
  cors: { readonly any: boolean; readonly origins: ReadonlySet<string> },
): Promise<Response> | Response {
  // Browsers apply no CORS to WebSockets, and an HTTP batch is a "simple" POST that runs
  // before CORS hides its answer: so a page's Origin is checked against the allowlist here.
  const origin = request.headers.get("origin");
  if (origin !== null && !cors.any && !cors.origins.has(origin)) {
    return errorResponse(
      forbidden(
        `origin ${JSON.stringify(origin.slice(0, 200))} is not in CORS_ORIGINS`,
        undefined,
        "origin_not_allowed",
      ),
    );
  }
  if (request.headers.get("upgrade")?.toLowerCase() === "websocket") {
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    server.accept();
    const connection = guard(server, {
      idleTimeoutMs: setting(env.RPC_IDLE_TIMEOUT_MS, DEFAULTS.idleTimeoutMs),
      maxConnectionMs: setting(env.RPC_MAX_CONNECTION_MS, DEFAULTS.maxConnectionMs),
      maxSubscriptions: setting(env.RPC_MAX_SUBSCRIPTIONS, DEFAULTS.maxSubscriptions),
    });
    newWebSocketRpcSession(server, new RpcGateway({ env, fetch, connection }));
    return new Response(null, { status: 101, webSocket: client });
  }
  if (request.method === "POST") {
    return newHttpBatchRpcResponse(request, new RpcGateway({ env, fetch, connection: null }));
  }
  return errorResponse(
    unsupportedOperation("capnweb: POST an HTTP batch, or open a WebSocket (Upgrade: websocket)", {
      allow: ["POST"],
    }),
  );
}

/** Bounds a WebSocket's life: idle timeout, maximum age; aborts its subscriptions on close. */
function guard(
  socket: WebSocket,
  limits: { idleTimeoutMs: number; maxConnectionMs: number; maxSubscriptions: number },
): RpcConnection {
  const ended = new AbortController();
  let idle: ReturnType<typeof setTimeout> | undefined;
  const close = (reason: string) => {
    if (ended.signal.aborted) return;
    try {
      socket.close(IDLE_CLOSE_CODE, reason);
    } catch {
      // already closing
    }
    finish();
  };
  const armIdle = () => {
    clearTimeout(idle);
    idle = setTimeout(() => close("idle timeout"), limits.idleTimeoutMs);
  };
  const age = setTimeout(() => close("maximum connection age"), limits.maxConnectionMs);
  const finish = () => {
    clearTimeout(idle);
    clearTimeout(age);
    ended.abort();
  };
  socket.addEventListener("message", armIdle);
  socket.addEventListener("close", finish);
  socket.addEventListener("error", finish);
  armIdle();
  return { signal: ended.signal, maxSubscriptions: limits.maxSubscriptions, subscriptions: 0 };
}
