/**
 * A create (PUT) names the stream's whole configuration. Creating an existing stream is
 * idempotent only for the same configuration; `createDifferences` lists what differs, so
 * that the 409 can say it.
 */
import { DEFAULT_CONTENT_TYPE, sameContentType } from "./content-type";
import type { StreamMeta } from "./log";

export interface CreateRequest {
  name: string;
  path: string;
  contentType: string | null;
  ttlSeconds: number | null;
  expiresAt: number | null;
  close: boolean;
  fork: { source: string; offset: string | null; subOffset: number } | null;
  body: Uint8Array | null;
}

/** What an existing stream's configuration differs in from a create request (none: idempotent). */
export function createDifferences(request: CreateRequest, meta: StreamMeta): string[] {
  const differences: string[] = [];
  const wantType = request.contentType ?? (request.fork ? null : DEFAULT_CONTENT_TYPE);
  if (wantType !== null && !sameContentType(wantType, meta.content_type))
    differences.push("content type");
  const inheritsExpiry =
    request.fork !== null && request.ttlSeconds === null && request.expiresAt === null;
  if (!inheritsExpiry) {
    if (request.ttlSeconds !== meta.ttl_seconds) differences.push("TTL");
    if (request.ttlSeconds === null && request.expiresAt !== meta.expires_at)
      differences.push("expiry");
  }
  if ((request.fork?.source ?? null) !== meta.forked_from) differences.push("fork source");
  else if (request.fork) {
    if (request.fork.offset !== null && request.fork.offset !== meta.fork_offset)
      differences.push("fork offset");
    if (request.fork.subOffset !== (meta.fork_sub_offset ?? 0)) differences.push("fork sub-offset");
  }
  if (request.close && meta.closed_at === null) differences.push("closed state");
  return differences;
}
