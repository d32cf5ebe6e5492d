/**
 * Forwards a request to a stream's Durable Object, which serves the Durable Streams protocol
 * itself. Internal headers (`x-ds-*`) are stripped from what the client sent and set here
 * from the authenticated tenant, so a client can never name another tenant's stream.
 */
import type { Context } from "hono";
import { invalidInput } from "../errors/domain";
import { streamName } from "../streams/naming";
import { validateStreamPath } from "../streams/path";
import { INTERNAL, MAX_BODY_BYTES, tooLarge } from "../streams/protocol/handler";
import { H } from "../streams/protocol/headers";
import { streamStub } from "../streams/stub";
import type { AppEnv } from "./app";

/** The prefix under which the Durable Streams protocol is served. */
export const STREAM_ROUTE = "/v1/stream";

export function forwardToStream(
  c: Context<AppEnv>,
  path: string,
  internal: Record<string, string> = {},
): Promise<Response> {
  const tenant = c.get("tenant");
  const headers = new Headers(c.req.raw.headers);
  for (const name of Object.values(INTERNAL)) headers.delete(name);
  headers.set(INTERNAL.name, streamName(tenant, path));
  headers.set(INTERNAL.path, path);
  for (const [name, value] of Object.entries(internal)) headers.set(name, value);
  const forkedFrom = c.req.header(H.forkedFrom);
  if (forkedFrom !== undefined) {
    if (c.req.method !== "PUT")
      throw invalidInput("Stream-Forked-From is only valid on PUT", undefined, "invalid_header");
    const source = forkedFrom.startsWith(`${STREAM_ROUTE}/`)
      ? forkedFrom.slice(STREAM_ROUTE.length)
      : forkedFrom;
    headers.set(INTERNAL.forkSource, streamName(tenant, validateStreamPath(source)));
  }
  // A body declared too large is refused here, before it is piped to the Durable Object (which
  // would answer 413 while the pipe still reads the client's body after the response).
  if (Number(c.req.header("content-length") ?? "0") > MAX_BODY_BYTES) throw tooLarge();
  const stub = streamStub(c.env, streamName(tenant, path));
  const hasBody = c.req.method !== "GET" && c.req.method !== "HEAD";
  // A session token in the query (EventSource) has done its work: it goes no further.
  const url = new URL(c.req.url);
  url.searchParams.delete("token");
  return stub.fetch(
    new Request(url, {
      method: c.req.method,
      headers,
      body: hasBody ? c.req.raw.body : null,
    }),
  );
}
