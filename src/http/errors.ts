/**
 * One error type for every failure a caller can act on. It carries an HTTP status and a
 * stable machine code and renders as `{ error: { code, message, details? } }`. Across a
 * Durable Object RPC hop it travels as a value in a result envelope (src/rpc/result.ts), not
 * as an exception (workerd logs those as uncaught). `ApiError.from` still rebuilds one from
 * the older `ApiError:{…}` message form.
 */
export type ErrorCode =
  | "bad_request"
  | "invalid_path"
  | "invalid_offset"
  | "invalid_json"
  | "invalid_header"
  | "validation_failed"
  | "unsupported_media_type"
  | "not_found"
  | "method_not_allowed"
  | "gone"
  | "conflict"
  | "offset_conflict"
  | "stream_closed"
  | "payload_too_large"
  | "reserved_event_type"
  | "reserved_idempotency_key"
  | "forbidden"
  | "origin_not_allowed"
  | "unauthorized"
  | "tokens_not_configured"
  | "unavailable"
  | "internal";

/** Prefix of the older message form of an ApiError that crossed RPC as an exception. */
const RPC_PREFIX = "ApiError";

export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    /** Protocol headers that belong on the HTTP error response (e.g. Stream-Closed). */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }

  toJSON() {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.details === undefined ? {} : { details: this.details }),
      },
    };
  }

  /** Rebuilds an ApiError thrown on the far side of an RPC call; anything else is returned as is. */
  static from(error: unknown): unknown {
    if (error instanceof ApiError) return error;
    if (error instanceof Error) {
      const at = error.message.indexOf(`${RPC_PREFIX}:`);
      if (at >= 0) {
        try {
          const p = JSON.parse(error.message.slice(at + RPC_PREFIX.length + 1)) as {
            s: number;
            c: ErrorCode;
            m: string;
            d?: unknown;
          };
          return new ApiError(p.s, p.c, p.m, p.d);
        } catch {
          return error;
        }
      }
    }
    return error;
  }
}

export const badRequest = (message: string, details?: unknown, code: ErrorCode = "bad_request") =>
  new ApiError(400, code, message, details);
export const notFound = (message: string) => new ApiError(404, "not_found", message);
export const conflict = (message: string, details?: unknown, code: ErrorCode = "conflict") =>
  new ApiError(409, code, message, details);

export function errorResponse(error: ApiError, headers?: HeadersInit): Response {
  const h = new Headers(headers);
  for (const [name, value] of Object.entries(error.headers ?? {})) h.set(name, value);
  h.set("content-type", "application/json");
  return new Response(JSON.stringify(error.toJSON()), { status: error.status, headers: h });
}
