/**
 * What a route says about itself, kept on the route: `describe(...)` is a pass-through
 * middleware carrying the route's summary and its response schemas; the validator
 * middlewares (validators.ts) carry their request schemas and `access(...)` its token scope.
 * Each records its part against its own handler function, and openapi.ts reads them back
 * while walking the router's table (`app.routes`), so the API document lists exactly the
 * routes that exist, with the schemas they really validate with: no second route list.
 */
import type { MiddlewareHandler } from "hono";
import type { z } from "zod";

export interface ResponseDoc {
  description: string;
  /** The JSON body of this answer (none for 204s). */
  schema?: z.ZodType;
  /** Other media types of the same answer, as OpenAPI media type objects. */
  alsoAs?: Record<string, unknown>;
}

export interface RouteDoc {
  summary: string;
  description?: string;
  /** Status → answer: at least the success answers; errors are added as `4XX` for all. */
  responses: Record<number, ResponseDoc>;
  /** OpenAPI parameters the validators do not describe (headers). */
  parameters?: Record<string, unknown>[];
}

export type InputDoc = {
  target: "json" | "query" | "param";
  schema: z.ZodType;
  /** An optional body (an empty one stands for `{}`). */
  optional?: boolean;
};

/** A route's part: its description, a validated input, or the token scope it admits. */
export type RoutePart =
  | { kind: "route"; doc: RouteDoc }
  | { kind: "input"; input: InputDoc }
  | { kind: "access"; scope: string | null };

const parts = new WeakMap<object, RoutePart>();

/** Records what `handler` (one middleware of a route) tells about its route. */
export function recordPart<H extends object>(handler: H, part: RoutePart): H {
  parts.set(handler, part);
  return handler;
}

export const partOf = (handler: object): RoutePart | undefined => parts.get(handler);

/** The route's summary and answers, for /openapi.json; passes the request on unchanged. */
export function describe(doc: RouteDoc): MiddlewareHandler {
  return recordPart<MiddlewareHandler>((_c, next) => next(), { kind: "route", doc });
}

/** A JSON answer with its schema. */
export const json = (description: string, schema: z.ZodType): ResponseDoc => ({
  description,
  schema,
});
