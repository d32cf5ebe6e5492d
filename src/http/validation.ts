/**
 * Request parsing at the edge: bodies and queries go through zod, and a failure becomes a
 * 400 `{ error: { code, message, details } }` whose message names the offending path
 * (413 for a body over the limit, 415 for one that is not JSON).
 */
import type { Context } from "hono";
import type { z } from "zod";
import { ApiError, badRequest } from "./errors";

const MAX_JSON_BODY = 1024 * 1024;

/** JSON.parse that turns a syntax error into a 400 `invalid_json`. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw badRequest(
      `body is not valid JSON: ${(error as Error).message}`,
      undefined,
      "invalid_json",
    );
  }
}

export function parseWith<T extends z.ZodType>(
  schema: T,
  value: unknown,
  what: string,
): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = issue && issue.path.length > 0 ? issue.path.join(".") : "(root)";
  throw badRequest(
    `invalid ${what} at ${where}: ${issue?.message}`,
    { issues: result.error.issues },
    "validation_failed",
  );
}

/**
 * Parses a JSON body; with `optional`, an empty body stands for `{}`. A body over the limit
 * is a 413 (refused from Content-Length before it is read, when the client declares it), a
 * body that is not `application/json` a 415.
 */
export async function jsonBody<T extends z.ZodType>(
  c: Context,
  schema: T,
  options: { optional?: boolean } = {},
): Promise<z.output<T>> {
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > MAX_JSON_BODY) throw tooLarge();
  const text = await c.req.text();
  if (options.optional && text.trim() === "") return parseWith(schema, {}, "body");
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/json\s*(;|$)/i.test(type.trim())) {
    throw new ApiError(
      415,
      "unsupported_media_type",
      `Content-Type must be application/json, got ${JSON.stringify(type.slice(0, 100))}`,
    );
  }
  if (new TextEncoder().encode(text).byteLength > MAX_JSON_BODY) throw tooLarge();
  return parseWith(schema, parseJson(text), "body");
}

const tooLarge = () =>
  new ApiError(413, "payload_too_large", `body exceeds ${MAX_JSON_BODY} bytes`, {
    limit: MAX_JSON_BODY,
  });

export function query<T extends z.ZodType>(c: Context, schema: T): z.output<T> {
  return parseWith(schema, c.req.query(), "query");
}
