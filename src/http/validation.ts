/**
 * Request parsing at the edge: bodies and queries go through zod, and a failure becomes a
 * 400 `{ error: { code, message, details } }` whose message names the offending path. Bodies
 * are read with a byte limit (1 MiB unless a route allows more): a larger body is a 413 that
 * names the limit, refused from its Content-Length or as soon as the read passes the limit;
 * a body that is not declared JSON is a 415.
 */
import type { Context } from "hono";
import type { z } from "zod";
import { tooLarge, unsupportedMediaType } from "../errors/domain";
import { parseJson, parseWith } from "../errors/parse";
import { drainReader } from "../streams/protocol/handler";

/** Shared with the domain (stored rows, RPC input); re-exported for the routes. */
export { parseJson, parseWith };

export const MAX_JSON_BODY = 1024 * 1024;

const decoder = new TextDecoder();

const bodyTooLarge = (limit: number) =>
  tooLarge(`request body exceeds the ${limit}-byte limit`, { limitBytes: limit });

/** Reads a request body as UTF-8 text, refusing more than `limit` bytes with a 413. */
export async function readBodyText(request: Request, limit: number): Promise<string> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > limit) throw bodyTooLarge(limit);
  if (!request.body) return "";
  const reader = request.body.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await drainReader(reader);
      throw bodyTooLarge(limit);
    }
    parts.push(value);
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.byteLength;
  }
  return decoder.decode(bytes);
}

/**
 * Parses a JSON body; with `optional`, an empty body stands for `{}`. A body over the limit
 * is a 413 (refused from Content-Length before it is read, when the client declares it), a
 * body that is not `application/json` a 415.
 */
export async function jsonBody<T extends z.ZodType>(
  c: Context,
  schema: T,
  options: { optional?: boolean; maxBytes?: number } = {},
): Promise<z.output<T>> {
  const text = await readBodyText(c.req.raw, options.maxBytes ?? MAX_JSON_BODY);
  if (options.optional && text.trim() === "") return parseWith(schema, {}, "body");
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/json\s*(;|$)/i.test(type.trim())) {
    throw unsupportedMediaType(
      `Content-Type must be application/json, got ${JSON.stringify(type.slice(0, 100))}`,
    );
  }
  return parseWith(schema, parseJson(text), "body");
}

export function query<T extends z.ZodType>(c: Context, schema: T): z.output<T> {
  return parseWith(schema, c.req.query(), "query");
}
