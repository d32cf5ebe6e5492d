/**
 * Headers every response carries: browser hardening (protocol §10.7) and CORS, so web apps on
 * other origins can read streams with fetch/EventSource and see the protocol headers.
 *
 * CORS follows the CORS_ORIGINS allowlist. An allowlisted Origin is echoed back with
 * `Vary: Origin` and `Access-Control-Allow-Credentials: true` (so `withCredentials` works;
 * no route authenticates with cookies, so credentials carry no ambient authority); any other
 * origin gets no Access-Control-Allow-Origin (the browser refuses the response) and its
 * preflight a 403. Without an allowlist (local development) every origin gets `*`, which
 * browsers never combine with credentials, so no Allow-Credentials is sent then.
 */
import { forbidden } from "../errors/domain";
import { errorResponse } from "../errors/http";
import { H } from "../streams/protocol/headers";

const EXPOSED = [
  H.nextOffset,
  H.cursor,
  H.upToDate,
  H.closed,
  H.ttl,
  H.expiresAt,
  H.sseEncoding,
  H.producerEpoch,
  H.producerSeq,
  H.producerExpectedSeq,
  H.producerReceivedSeq,
  "ETag",
  "Location",
  "WWW-Authenticate",
  "Content-Type",
  "Retry-After",
  "Allow",
].join(", ");

const ALLOWED_REQUEST_HEADERS = [
  "authorization",
  "content-type",
  "if-none-match",
  "last-event-id",
  ...[
    H.seq,
    H.ttl,
    H.expiresAt,
    H.closed,
    H.forkedFrom,
    H.forkOffset,
    H.forkSubOffset,
    H.producerId,
    H.producerEpoch,
    H.producerSeq,
  ].map((name) => name.toLowerCase()),
].join(", ");

export interface CorsPolicy {
  /** No allowlist configured: any origin, as `*`. */
  any: boolean;
  origins: ReadonlySet<string>;
}

let cached: { raw: string | undefined; policy: CorsPolicy } | undefined;

/** Parses CORS_ORIGINS; a malformed entry is a configuration error, not a silent `*`. */
export function corsPolicy(raw: string | undefined): CorsPolicy {
  if (cached && cached.raw === raw) return cached.policy;
  const entries = (raw ?? "")
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  for (const entry of entries) {
    let origin: string | null = null;
    try {
      origin = new URL(entry).origin;
    } catch {}
    if (origin !== entry) {
      throw new Error(
        `CORS_ORIGINS: ${JSON.stringify(entry)} is not an origin (scheme://host[:port], no path or trailing slash)`,
      );
    }
  }
  const policy = { any: entries.length === 0, origins: new Set(entries) };
  cached = { raw, policy };
  return policy;
}

function applyCors(h: Headers, origin: string | null, policy: CorsPolicy): void {
  if (policy.any) {
    h.set("access-control-allow-origin", "*");
    return;
  }
  h.append("vary", "Origin");
  if (origin !== null && policy.origins.has(origin)) {
    h.set("access-control-allow-origin", origin);
    h.set("access-control-allow-credentials", "true");
  }
}

/**
 * The response with the standard headers. Answers built here have mutable headers and get
 * them in place; one whose headers are immutable (a Durable Object's answer, passed on) is
 * copied first, as a Response must be to change its headers.
 */
export function withStandardHeaders(
  response: Response,
  origin: string | null,
  policy: CorsPolicy,
): Response {
  try {
    // The first `set` throws (a TypeError) before anything changed when the headers are immutable.
    applyStandardHeaders(response.headers, origin, policy);
    return response;
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
  }
  const out = new Response(response.body, response);
  applyStandardHeaders(out.headers, origin, policy);
  return out;
}

function applyStandardHeaders(h: Headers, origin: string | null, policy: CorsPolicy): void {
  h.set("x-content-type-options", "nosniff");
  h.set("cross-origin-resource-policy", "cross-origin");
  // Headers from a Durable Object's response may carry CORS of their own: ours decide.
  h.delete("access-control-allow-origin");
  h.delete("access-control-allow-credentials");
  applyCors(h, origin, policy);
  h.set("access-control-expose-headers", EXPOSED);
}

export function preflight(origin: string | null, policy: CorsPolicy): Response {
  if (!policy.any && (origin === null || !policy.origins.has(origin))) {
    return errorResponse(
      forbidden(
        `origin ${JSON.stringify((origin ?? "(none)").slice(0, 200))} is not in CORS_ORIGINS`,
        undefined,
        "origin_not_allowed",
      ),
    );
  }
  return new Response(null, {
    status: 204,
    headers: {
      "access-control-allow-methods": "GET, HEAD, POST, PUT, DELETE, OPTIONS",
      "access-control-allow-headers": ALLOWED_REQUEST_HEADERS,
      "access-control-max-age": "86400",
    },
  });
}
