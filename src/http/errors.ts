/**
 * The worker edge's error answer. Domain code throws DomainErrors (src/errors/domain.ts),
 * which know no status and no headers; here one becomes the HTTP response: the status from
 * the one code → status table (src/errors/http.ts), the JSON body, and the headers that only
 * HTTP has, such as the `WWW-Authenticate` challenge of a 401 (RFC 6750).
 */
import type { DomainError } from "../errors/domain";
import { errorResponse } from "../errors/http";

const REALM = 'Bearer realm="durable-agent-sessions"';

/** `Bearer realm=…`, from the error's details: `realm` (admin routes have their own) and `bearerError`. */
function challenge(error: DomainError): string {
  const details = error.details as { bearerError?: unknown; realm?: unknown } | undefined;
  const realm =
    typeof details?.realm === "string" ? `Bearer realm=${JSON.stringify(details.realm)}` : REALM;
  return typeof details?.bearerError === "string"
    ? `${realm}, error="${details.bearerError}"`
    : realm;
}

/** The HTTP response for a DomainError; `headers` are route-specific ones (e.g. `Allow`). */
export function errorAnswer(error: DomainError, headers?: HeadersInit): Response {
  const h = new Headers(headers);
  if (error.code === "unauthorized") h.set("www-authenticate", challenge(error));
  return errorResponse(error, h);
}
