/**
 * The one shape in which every Durable Object RPC method answers (Stream DO, SessionAgent,
 * processor hosts), and in which the capnweb face receives them: `{ ok: true, value }` or
 * `{ ok: false, error: { code, message, details? } }`. No status: that is an edge's business
 * (src/errors/http.ts); the details cross whole, so an edge can build its headers from them.
 *
 * Why not throw? workerd logs every exception that leaves an RPC method as "Uncaught …",
 * so each expected refusal (a missing stream, a conflict, a validation error) buried the real
 * failures of a dev log. Domain errors therefore travel as values; `unwrap` turns them back
 * into the caller's own DomainError. An unexpected failure is logged once, as structured
 * JSON, where it happens (`serveRpc`), and crosses as `internal` with a message that carries
 * no detail (and so no secret).
 *
 * `rpcClient(stub)` wraps a stub so that every method call is unwrapped: callers keep
 * writing `await stream.appendBatch(…)` and get the value or a DomainError.
 */
import { DomainError, type ErrorCode, internal, isErrorCode } from "../errors/domain";

export interface RpcErrorBody {
  code: ErrorCode;
  message: string;
  details?: unknown;
}

export type RpcResult<T> = { ok: true; value: T } | { ok: false; error: RpcErrorBody };

export const rpcOk = <T>(value: T): RpcResult<T> => ({ ok: true, value });

export function rpcFail(error: DomainError): RpcResult<never> {
  return {
    ok: false,
    error: {
      code: error.code,
      message: error.message,
      ...(error.details === undefined ? {} : { details: error.details }),
    },
  };
}

export function isRpcResult(value: unknown): value is RpcResult<unknown> {
  if (value === null || typeof value !== "object") return false;
  const v = value as { ok?: unknown; value?: unknown; error?: unknown };
  if (v.ok === true) return Object.hasOwn(v, "value");
  if (v.ok !== false || v.error === null || typeof v.error !== "object") return false;
  const e = v.error as { code?: unknown; message?: unknown };
  return isErrorCode(e.code) && typeof e.message === "string";
}

/** The value of a result, or its error rethrown as the caller's own DomainError. */
export async function unwrap<T>(result: RpcResult<T> | Promise<RpcResult<T>>): Promise<T> {
  const settled = await result;
  if (!isRpcResult(settled)) {
    throw internal("malformed RPC answer (not a result envelope)");
  }
  if (settled.ok) return settled.value as T;
  const { code, message, details } = settled.error;
  throw new DomainError(code, message, details);
}

/**
 * Runs an RPC method body: its value, or its DomainError, as a result. Anything else is a real
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
    if (error instanceof DomainError) return rpcFail(error);
    console.error(
      JSON.stringify({
        msg: "rpc failed",
        where,
        error: String((error as Error)?.message ?? error),
        stack: (error as Error)?.stack,
      }),
    );
    return rpcFail(internal());
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
export function rpcClient<T extends object>(stub: T): Unwrapped<T>;
// The overload above states what the Proxy below does to T (TypeScript types a Proxy as its
// target): each method answering an RpcResult<R> answers R.
export function rpcClient(stub: object): object {
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
  return client;
}

/** The stub behind an `rpcClient` (for APIs that need the real stub), or the value itself. */
export function rawStub<T extends object>(value: T): T {
  return (raw.get(value) as T | undefined) ?? value;
}
