/**
 * Validator middleware for the JSON routes: each parses one part of the request with a zod
 * schema (through validation.ts, so errors keep the API's JSON shape and codes) and records
 * the result for `c.req.valid(...)`. Declared with hono's input types, so `typeof routes`
 * carries every route's request types and `hc` clients are typed from the routes themselves.
 * (hono/validator's own JSON parsing is not used: it answers malformed JSON with a plain-text
 * HTTPException instead of our `{ error }` body.) Each also records its schema for the API
 * document (route-docs.ts).
 */
import type { Env, MiddlewareHandler } from "hono";
import type { z } from "zod";
import { recordPart } from "./route-docs";
import { jsonBody, parseWith, query } from "./validation";

type Target<K extends string, S extends z.ZodType> = {
  in: { [P in K]: z.input<S> };
  out: { [P in K]: z.output<S> };
};

export function jsonInput<S extends z.ZodType, E extends Env = Env, P extends string = string>(
  schema: S,
  options: { optional?: boolean; maxBytes?: number } = {},
): MiddlewareHandler<E, P, Target<"json", S>> {
  return recordPart<MiddlewareHandler<E, P, Target<"json", S>>>(
    async (c, next) => {
      c.req.addValidatedData("json", (await jsonBody(c, schema, options)) as object);
      await next();
    },
    { kind: "input", input: { target: "json", schema, optional: options.optional } },
  );
}

export function queryInput<S extends z.ZodType, E extends Env = Env, P extends string = string>(
  schema: S,
): MiddlewareHandler<E, P, Target<"query", S>> {
  return recordPart<MiddlewareHandler<E, P, Target<"query", S>>>(
    async (c, next) => {
      c.req.addValidatedData("query", query(c, schema) as object);
      await next();
    },
    { kind: "input", input: { target: "query", schema } },
  );
}

export function paramInput<S extends z.ZodType, E extends Env = Env, P extends string = string>(
  schema: S,
): MiddlewareHandler<E, P, Target<"param", S>> {
  return recordPart<MiddlewareHandler<E, P, Target<"param", S>>>(
    async (c, next) => {
      c.req.addValidatedData("param", parseWith(schema, c.req.param(), "path") as object);
      await next();
    },
    { kind: "input", input: { target: "param", schema } },
  );
}
