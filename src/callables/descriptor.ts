/**
 * A callable is data, never code: a JSON descriptor, validated by zod, naming how to reach a
 * target — a Durable Object method, a service-binding method, or an HTTPS webhook. Whether a
 * valid descriptor may actually be used (allowlisted binding, acceptable URL) is policy.ts.
 */
import { z } from "zod";

const bindingName = z
  .string()
  .regex(/^[A-Z][A-Z0-9_]{0,63}$/, "binding names are UPPER_SNAKE_CASE");
/**
 * Names that are never a subscriber's own method: Durable Object lifecycle handlers, what
 * every object inherits (`toString`, `valueOf`, `hasOwnProperty`, …), RPC stub built-ins, and
 * a Durable Object namespace's own methods (for a binding that is a namespace). Calling one
 * of these would "succeed" without running subscriber code. The allowlist (policy.ts) is the
 * real guard; this refuses the obvious ones at the door whatever the configuration says.
 */
const RESERVED_METHODS = new Set([
  "fetch",
  "alarm",
  "connect",
  "constructor",
  "webSocketMessage",
  "webSocketClose",
  "webSocketError",
  "dup",
  "then",
  "idFromName",
  "idFromString",
  "newUniqueId",
  "get",
  "getByName",
  "getExisting",
  "jurisdiction",
  ...Object.getOwnPropertyNames(Object.prototype),
  ...Object.getOwnPropertyNames(Function.prototype),
]);

export const reservedMethod = (name: string) => RESERVED_METHODS.has(name);

const methodName = z
  .string()
  .regex(/^[a-zA-Z][a-zA-Z0-9_]{0,63}$/, "method names are plain identifiers")
  .refine((m) => !reservedMethod(m), {
    message: "that method is a built-in and cannot be a callable target",
  });

export const callableSchema = z.discriminatedUnion("kind", [
  z.strictObject({
    kind: z.literal("durable-object"),
    binding: bindingName,
    name: z.string().min(1).max(600),
    method: methodName,
  }),
  z.strictObject({ kind: z.literal("service"), binding: bindingName, method: methodName }),
  z.strictObject({ kind: z.literal("webhook"), url: z.url().max(2048) }),
]);
export type Callable = z.infer<typeof callableSchema>;

/** A stable string for comparing two descriptors (key order does not matter). */
export function callableKey(callable: Callable): string {
  switch (callable.kind) {
    case "durable-object":
      return `do:${callable.binding}:${callable.method}:${callable.name}`;
    case "service":
      return `svc:${callable.binding}:${callable.method}`;
    case "webhook":
      return `hook:${callable.url}`;
  }
}
