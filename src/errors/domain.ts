/**
 * The one error type for failures a caller can act on, in the domain's terms: a stable
 * machine `code`, a message, and optional `details` (plain JSON data). It knows nothing of
 * HTTP: each edge maps the code to a status (src/errors/http.ts) and builds its own headers
 * from the details (e.g. the Durable Streams protocol's `Producer-Epoch`). Across a Durable
 * Object RPC hop it travels as a value in the result envelope (src/rpc/result.ts), details
 * included.
 *
 * The constructors below are named for what went wrong, not for a status. The codes are
 * part of the public API: clients and tests match on them.
 */
/** The codes of input that is malformed or not acceptable as given. */
export type InvalidInputCode =
  | "bad_request"
  | "invalid_path"
  | "invalid_offset"
  | "invalid_json"
  | "invalid_header"
  | "validation_failed"
  | "reserved_event_type"
  | "reserved_idempotency_key";

export type ErrorCode =
  | InvalidInputCode
  | "unsupported_media_type"
  | "not_found"
  | "method_not_allowed"
  | "gone"
  | "conflict"
  | "offset_conflict"
  | "stream_closed"
  | "payload_too_large"
  | "forbidden"
  | "origin_not_allowed"
  | "unauthorized"
  | "tokens_not_configured"
  | "unavailable"
  | "corrupt_record"
  | "internal";

export class DomainError extends Error {
  override readonly name = "DomainError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
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
}

export const invalidInput = (
  message: string,
  details?: unknown,
  code: InvalidInputCode = "bad_request",
) => new DomainError(code, message, details);
export const notFound = (message: string, details?: unknown) =>
  new DomainError("not_found", message, details);
/** The operation does not exist on this resource (details may name the ones that do). */
export const unsupportedOperation = (message: string, details?: unknown) =>
  new DomainError("method_not_allowed", message, details);
export const gone = (message: string) => new DomainError("gone", message);
export const conflict = (
  message: string,
  details?: unknown,
  code: "conflict" | "offset_conflict" | "stream_closed" = "conflict",
) => new DomainError(code, message, details);
export const tooLarge = (message: string, details?: unknown) =>
  new DomainError("payload_too_large", message, details);
export const unsupportedMediaType = (message: string) =>
  new DomainError("unsupported_media_type", message);
export const forbidden = (
  message: string,
  details?: unknown,
  code: "forbidden" | "origin_not_allowed" = "forbidden",
) => new DomainError(code, message, details);
/** No (valid) credential; `bearerError` is the RFC 6750 error code, when there is one. */
export const unauthorized = (message: string, bearerError?: "invalid_token") =>
  new DomainError("unauthorized", message, bearerError ? { bearerError } : undefined);
export const notConfigured = (message: string) => new DomainError("tokens_not_configured", message);
export const internal = (message = "internal error") => new DomainError("internal", message);

/**
 * A stored record failed validation when read back: its own code (not a bare `internal`),
 * a message naming the record, and one structured log line where it was found.
 */
export function corruptRecord(record: string, reason: string): DomainError {
  const error = new DomainError("corrupt_record", `${record} is corrupt: ${reason}`, { record });
  console.error(JSON.stringify({ msg: "corrupt stored record", record, reason }));
  return error;
}

/**
 * Whether a failure is the service's own (a bug, corrupt data, missing configuration)
 * rather than something the caller asked for. Callers that turn a refusal into an event
 * (e.g. a processor reporting "the reply could not be stored") rethrow faults instead.
 */
const FAULTS: ReadonlySet<ErrorCode> = new Set([
  "internal",
  "corrupt_record",
  "tokens_not_configured",
]);
export const isFault = (code: ErrorCode): boolean => FAULTS.has(code);

/**
 * Whether the same request can succeed later without anyone changing it: a delivery whose
 * subscriber answers a retryable code is retried with backoff, any other is parked at once
 * (retrying a missing processor, a wrong stream or a corrupt record only repeats the answer).
 */
export const RETRYABLE: Readonly<Record<ErrorCode, boolean>> = {
  bad_request: false,
  invalid_path: false,
  invalid_offset: false,
  invalid_json: false,
  invalid_header: false,
  validation_failed: false,
  unsupported_media_type: false,
  not_found: false,
  method_not_allowed: false,
  gone: false,
  conflict: false,
  offset_conflict: true,
  stream_closed: false,
  payload_too_large: false,
  reserved_event_type: false,
  reserved_idempotency_key: false,
  forbidden: false,
  origin_not_allowed: false,
  unauthorized: false,
  tokens_not_configured: true,
  unavailable: true,
  corrupt_record: false,
  internal: true,
};

const CODES: ReadonlySet<string> = new Set(Object.keys(RETRYABLE));
export const isErrorCode = (value: unknown): value is ErrorCode =>
  typeof value === "string" && CODES.has(value);
