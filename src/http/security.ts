/**
 * Headers every response carries: browser hardening (protocol §10.7) and CORS, so web apps on
 * other origins can read streams with fetch/EventSource and see the protocol headers.
 */
const EXPOSED = [
  "Stream-Next-Offset",
  "Stream-Cursor",
  "Stream-Up-To-Date",
  "Stream-Closed",
  "Stream-TTL",
  "Stream-Expires-At",
  "Stream-SSE-Data-Encoding",
  "Producer-Epoch",
  "Producer-Seq",
  "Producer-Expected-Seq",
  "Producer-Received-Seq",
  "ETag",
  "Location",
  "WWW-Authenticate",
  "Content-Type",
].join(", ");

const ALLOWED_REQUEST_HEADERS = [
  "authorization",
  "content-type",
  "if-none-match",
  "last-event-id",
  "stream-seq",
  "stream-ttl",
  "stream-expires-at",
  "stream-closed",
  "stream-forked-from",
  "stream-fork-offset",
  "stream-fork-sub-offset",
  "producer-id",
  "producer-epoch",
  "producer-seq",
].join(", ");

export function withStandardHeaders(response: Response): Response {
  const out = new Response(response.body, response);
  const h = out.headers;
  h.set("x-content-type-options", "nosniff");
  h.set("cross-origin-resource-policy", "cross-origin");
  h.set("access-control-allow-origin", "*");
  h.set("access-control-expose-headers", EXPOSED);
  return out;
}

export function preflight(): Response {
  return new Response(null, {
    status: 204,
    headers: {
      "access-control-allow-methods": "GET, HEAD, POST, PUT, DELETE, OPTIONS",
      "access-control-allow-headers": ALLOWED_REQUEST_HEADERS,
      "access-control-max-age": "86400",
    },
  });
}
