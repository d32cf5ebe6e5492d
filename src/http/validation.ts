/**
 * Request parsing at the edge: bodies and queries go through zod, and a failure becomes a
 * 400 `{ error: { code, message, details } }` whose message names the offending path.
 */
import type { Context } from "hono";
import type { z } from "zod";
import { badRequest } from "./errors";

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

/** Parses a JSON body; with `optional`, an empty body stands for `{}`. */
export async function jsonBody<T extends z.ZodType>(
  c: Context,
  schema: T,
  options: { optional?: boolean } = {},
): Promise<z.output<T>> {
  const text = await c.req.text();
  if (options.optional && text.trim() === "") return parseWith(schema, {}, "body");
  const type = c.req.header("content-type") ?? "";
  if (!type.toLowerCase().startsWith("application/json")) {
    throw badRequest("Content-Type must be application/json", undefined, "unsupported_media_type");
  }
  if (text.length > MAX_JSON_BODY) throw badRequest(`body exceeds ${MAX_JSON_BODY} bytes`);
  return parseWith(schema, parseJson(text), "body");
}

export function query<T extends z.ZodType>(c: Context, schema: T): z.output<T> {
  return parseWith(schema, c.req.query(), "query");
}
