/**
 * How a DomainError reads on an HTTP face: the one code → status table, and the JSON body
 * `{ error: { code, message, details? } }`. Three faces speak HTTP: the worker's routes
 * (src/http), the Durable Streams protocol served by each Stream DO (src/streams/protocol)
 * and the capnweb endpoint (src/rpc), so the table lives here, beside the error, rather than
 * inside one of them. Headers are each face's own business (`WWW-Authenticate` in src/http,
 * `Producer-Epoch` in the protocol): it passes them in.
 */
import type { DomainError, ErrorCode } from "./domain";

export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  bad_request: 400,
  invalid_path: 400,
  invalid_offset: 400,
  invalid_json: 400,
  invalid_header: 400,
  validation_failed: 400,
  reserved_event_type: 400,
  reserved_idempotency_key: 400,
  unauthorized: 401,
  forbidden: 403,
  origin_not_allowed: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  offset_conflict: 409,
  stream_closed: 409,
  gone: 410,
  payload_too_large: 413,
  unsupported_media_type: 415,
  internal: 500,
  corrupt_record: 500,
  tokens_not_configured: 503,
  unavailable: 503,
};

export const statusOf = (error: DomainError): number => HTTP_STATUS[error.code];

/**
 * The error as a JSON response with its status; `headers` are the face's own. A 405 names the
 * methods there are (`Allow`, which HTTP requires) from `details.allow`.
 */
export function errorResponse(error: DomainError, headers?: HeadersInit): Response {
  const h = new Headers(headers);
  const allow = (error.details as { allow?: unknown } | undefined)?.allow;
  if (error.code === "method_not_allowed" && Array.isArray(allow)) h.set("allow", allow.join(", "));
  h.set("content-type", "application/json");
  return new Response(JSON.stringify(error.toJSON()), { status: statusOf(error), headers: h });
}
