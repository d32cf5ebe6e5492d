/**
 * A callable is data, never code: a JSON descriptor, validated by zod, naming how to reach a
 * target — a Durable Object method, a service-binding method, or an HTTPS webhook. Whether a
 * valid descriptor may actually be used (allowlisted binding, acceptable URL) is policy.ts.
 */
import { z } from "zod";

const bindingName = z
  .string()
  .regex(/^[A-Z][A-Z0-9_]{0,63}$/, "binding names are UPPER_SNAKE_CASE");
const methodName = z
  .string()
  .regex(/^[a-zA-Z][a-zA-Z0-9_]{0,63}$/, "method names are plain identifiers")
  .refine(
    (m) =>
      ![
        "fetch",
        "alarm",
        "constructor",
        "webSocketMessage",
        "webSocketClose",
        "webSocketError",
      ].includes(m),
    {
      message: "that method cannot be a callable target",
    },
  );

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
