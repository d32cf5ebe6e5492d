/**
 * The OpenAPI 3.1 description of the JSON API (sessions, subscriptions), served at
 * `GET /openapi.json` and rendered at `/docs`. It is generated from the router's own table
 * (`app.routes`): every route that carries a `describe(...)` (route-docs.ts) becomes an
 * operation, its parameters and request body are the schemas its validator middlewares parse
 * with, its security the `access(...)` scope it checks, and its answers the response schemas
 * of api-schemas.ts (which the tests check real responses against). All are converted by
 * zod's own JSON Schema support, so the document cannot drift from the routes. Streams are
 * described by the Durable Streams protocol and only linked here.
 */
import type { RouterRoute } from "hono/types";
import { z } from "zod";
import { errorSchema, eventsSchema, liveSchema } from "./api-schemas";
import { type InputDoc, partOf, type ResponseDoc, type RouteDoc } from "./route-docs";

const input = (schema: z.ZodType) =>
  z.toJSONSchema(schema, { io: "input", unrepresentable: "any" });
const output = (schema: z.ZodType) =>
  z.toJSONSchema(schema, { io: "output", unrepresentable: "any" });

const ERRORS = {
  "4XX": {
    description:
      "Invalid input (400), missing or invalid credentials (401), a session token without the scope or on a tenant-level route (403), unknown resource (404), method not allowed (405), conflict (409), body too large (413), body not JSON (415): `{ error: { code, message, details? } }`",
    content: { "application/json": { schema: output(errorSchema) } },
  },
};

/** A parameter's schema: what the client sends (a coerced number reads as its output). */
function parameterSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _, ...sent } = input(schema);
  if (Object.keys(sent).length > 0) return sent;
  const { $schema: __, ...parsed } = output(schema);
  return parsed;
}

function parametersOf({ target, schema }: InputDoc): Record<string, unknown>[] {
  if (target === "json" || !(schema instanceof z.ZodObject)) return [];
  return Object.entries(schema.shape as Record<string, z.ZodType>).map(([name, field]) => ({
    name,
    in: target === "param" ? "path" : "query",
    required: target === "param" || !field.safeParse(undefined).success,
    schema: parameterSchema(field),
    ...(field.description ? { description: field.description } : {}),
  }));
}

function responseOf(response: ResponseDoc) {
  const content = {
    ...(response.schema ? { "application/json": { schema: output(response.schema) } } : {}),
    ...response.alsoAs,
  };
  return {
    description: response.description,
    ...(Object.keys(content).length > 0 ? { content } : {}),
  };
}

/** What the route's middlewares recorded, merged. */
interface RouteParts {
  doc?: RouteDoc;
  inputs: InputDoc[];
  /** The `access(...)` scope: absent on tenant-level routes (API key only). */
  scope?: string | null;
}

function operationOf({ doc, inputs, scope }: RouteParts & { doc: RouteDoc }) {
  const body = inputs.find((i) => i.target === "json");
  const security =
    scope === undefined
      ? {}
      : scope === null
        ? { security: [{ apiKey: [] }] }
        : { security: [{ apiKey: [] }, { sessionToken: [scope] }] };
  const access =
    typeof scope === "string"
      ? `API key, or a session token with the \`${scope}\` scope.`
      : undefined;
  const description = [doc.description, access].filter(Boolean).join("\n\n");
  return {
    summary: doc.summary,
    ...(description ? { description } : {}),
    ...security,
    parameters: [...inputs.flatMap(parametersOf), ...(doc.parameters ?? [])],
    ...(body
      ? {
          requestBody: {
            required: !body.optional,
            content: { "application/json": { schema: input(body.schema) } },
          },
        }
      : {}),
    responses: {
      ...Object.fromEntries(
        Object.entries(doc.responses).map(([status, r]) => [status, responseOf(r)]),
      ),
      ...ERRORS,
    },
  };
}

/** `/v1/sessions/:id` → `/v1/sessions/{id}` (a pattern like `:id{[0-9]+}` too). */
const openApiPath = (path: string) =>
  path.replace(/:([A-Za-z0-9_]+)(\{[^}]*\})?\??/g, (_, name: string) => `{${name}}`);

/** The operations of every described route in `routes`, in the router's order. */
function pathsOf(routes: readonly RouterRoute[]) {
  const found = new Map<string, Map<string, RouteParts>>();
  for (const route of routes) {
    const part = partOf(route.handler);
    if (part === undefined || route.method === "ALL") continue;
    const path = openApiPath(route.path);
    const byMethod = found.get(path) ?? new Map<string, RouteParts>();
    found.set(path, byMethod);
    const method = route.method.toLowerCase();
    const parts = byMethod.get(method) ?? { inputs: [] };
    byMethod.set(method, parts);
    if (part.kind === "route") parts.doc = part.doc;
    else if (part.kind === "input") parts.inputs.push(part.input);
    else parts.scope = part.scope;
  }
  const paths: Record<string, Record<string, ReturnType<typeof operationOf>>> = {};
  for (const [path, byMethod] of found) {
    for (const [method, parts] of byMethod) {
      // Routes without a description (the operator routes under /admin) stay out.
      if (parts.doc === undefined) continue;
      const item = paths[path] ?? {};
      item[method] = operationOf({ ...parts, doc: parts.doc });
      paths[path] = item;
    }
  }
  return paths;
}

export function openApiDocument(routes: readonly RouterRoute[]) {
  return {
    openapi: "3.1.0",
    info: {
      title: "Durable agent sessions",
      version: "0.1.0",
      description:
        "Agent sessions whose every step is an event on a resumable stream. Streams themselves are served at /v1/stream/<path> over the Durable Streams protocol (https://github.com/durable-streams/durable-streams).",
    },
    components: {
      securitySchemes: {
        apiKey: { type: "http", scheme: "bearer", description: "A tenant API key (servers only)." },
        sessionToken: {
          type: "http",
          scheme: "bearer",
          bearerFormat: "JWT",
          description:
            "A session token from POST /v1/sessions/{id}/tokens (for browsers): one session, scopes read / write / approve, at most 1 h. Also accepted as ?token= on the events route.",
        },
      },
      schemas: { SessionLive: output(liveSchema), ClientEvent: output(eventsSchema.element) },
    },
    security: [{ apiKey: [] }],
    paths: pathsOf(routes),
  };
}
