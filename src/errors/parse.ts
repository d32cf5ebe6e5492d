/**
 * Parsing untrusted values, shared by every door (HTTP routes, RPC methods, stored rows):
 * zod failures read the same everywhere, "at <path>: <message>" for the first issue, and
 * become a `validation_failed` DomainError with all issues in its details. Not tied to HTTP,
 * so domain modules parse with it without importing the edge.
 */
import type { z } from "zod";
import { DomainError, invalidInput } from "./domain";

/** "at <path>: <message>" for a zod error's first issue (the root reads "(root)"). */
export function issueText(error: z.ZodError): string {
  const issue = error.issues[0];
  const where = issue && issue.path.length > 0 ? issue.path.join(".") : "(root)";
  return `at ${where}: ${issue?.message ?? "invalid"}`;
}

/** The parsed value, or a `validation_failed` error naming `what` and the offending path. */
export function parseWith<T extends z.ZodType>(
  schema: T,
  value: unknown,
  what: string,
): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw invalidInput(
    `invalid ${what} ${issueText(result.error)}`,
    { issues: result.error.issues },
    "validation_failed",
  );
}

/** JSON.parse that turns a syntax error into an `invalid_json` error. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new DomainError("invalid_json", `body is not valid JSON: ${(error as Error).message}`);
  }
}
