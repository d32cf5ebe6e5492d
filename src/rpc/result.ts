/**
 * The one shape in which Durable Object RPC methods answer: `{ ok: true, value }` or
 * `{ ok: false, error: { code, message, status, details? } }`.
 *
 * Why not throw? workerd logs every exception that leaves an RPC method as "Uncaught …",
 * so each expected 4xx (a 404, a 409, a validation error) buried the real failures of a dev
 * log. Expected (domain) errors therefore travel as values; `unwrap` turns them back into
 * the caller's own ApiError, which the edge renders as JSON. An unexpected failure is logged
 * once, as structured JSON, where it happens (`serveRpc`), and crosses as a 500 `internal`
 * whose message carries no detail (and so no secret).
 *
 * `rpcClient(stub)` wraps a stub so that every method call is unwrapped: callers keep
 * writing `await stream.appendBatch(…)` and get the value or an ApiError.
 */
import { ApiError, type ErrorCode } from "../http/errors";

export interface RpcErrorBody {
  code: ErrorCode;
  message: string;
  status: number;
  details?: unknown;
}

export type RpcResult<T> = { ok: true; value: T } | { ok: false; error: RpcErrorBody };

export const rpcOk = <T>(value: T): RpcResult<T> => ({ ok: true, value });

export function rpcFail(error: ApiError): RpcResult<never> {
  return {
    ok: false,
    error: {
      code: error.code,
      message: error.message,
      status: error.status,
      ...(error.details === undefined ? {} : { details: error.details }),
    },
  };
}

export function isRpcResult(value: unknown): value is RpcResult<unknown> {
  if (value === null || typeof value !== "object") return false;
  const v = value as { ok?: unknown; value?: unknown; error?: unknown };
  if (v.ok === true) return Object.hasOwn(v, "value");
  if (v.ok !== false || v.error === null || typeof v.error !== "object") return false;
  const e = v.error as { code?: unknown; message?: unknown; status?: unknown };
  return (
    typeof e.code === "string" && typeof e.message === "string" && typeof e.status === "number"
  );
}

/** The value of a result, or its error rethrown as the caller's own ApiError. */
export async function unwrap<T>(result: RpcResult<T> | Promise<RpcResult<T>>): Promise<T> {
  const settled = await result;
  if (!isRpcResult(settled)) {
    throw new ApiError(500, "internal", "malformed RPC answer (not a result envelope)");
  }
  if (settled.ok) return settled.value as T;
  const { status, code, message, details } = settled.error;
  throw new ApiError(status, code, message, details);
}

/**
 * Runs an RPC method body: its value, or its ApiError, as a result. Anything else is a real
 * failure: logged once (structured, the error's message and stack only) and answered as a
 * bare 500.
 */
export async function serveRpc<T>(
  where: string,
  fn: () => T | Promise<T>,
): Promise<RpcResult<Awaited<T>>> {
  try {
    return rpcOk(await fn());
  } catch (error) {
    const known = ApiError.from(error);
    if (known instanceof ApiError) return rpcFail(known);
    console.error(
      JSON.stringify({
        msg: "rpc failed",
        where,
        error: String((error as Error)?.message ?? error),
        stack: (error as Error)?.stack,
      }),
    );
    return rpcFail(new ApiError(500, "internal", "internal error"));
  }
}

/** A method that answers a result, seen from the caller: it answers the value (or throws). */
export type Unwrapped<T> = {
  [K in keyof T]: T[K] extends (...args: infer A) => Promise<RpcResult<infer R>>
    ? (...args: A) => Promise<R>
    : T[K];
};

const raw = new WeakMap<object, object>();

/**
 * Wraps a stub (or any object) so that each method's result envelope is unwrapped. Answers
 * that are not envelopes (e.g. `fetch`) pass through untouched; so do non-method properties.
 */
export function rpcClient<T extends object>(stub: T): Unwrapped<T> {
  const client = new Proxy(stub, {
    get(target, property) {
      if (property === "then") return undefined;
      const member = Reflect.get(target, property);
      if (typeof member !== "function") return member;
      return async (...args: unknown[]) => {
        const answer = await (target as Record<PropertyKey, (...a: unknown[]) => unknown>)[
          property
        ]!(...args);
        return isRpcResult(answer) ? unwrap(answer) : answer;
      };
    },
  });
  raw.set(client, stub);
  return client as unknown as Unwrapped<T>;
}

/** The stub behind an `rpcClient` (for APIs that need the real stub), or the value itself. */
export function rawStub<T extends object>(value: T): T {
  return (raw.get(value) as T | undefined) ?? value;
}
