/**
 * Which methods a path supports, derived from the router's own route table (Hono's
 * `app.routes`), so that a known path asked with another method answers 405 with an
 * `Allow` header (RFC 9110 §15.5.6) instead of 404, and no hand-kept list can drift from
 * the routes. Middleware and catch-all (`ALL`) entries say nothing about a path's methods;
 * the stream routes (`ALL /v1/stream/*`) answer 405 themselves in the protocol handler.
 */

export interface RouteEntry {
  method: string;
  path: string;
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** A Hono path pattern (`/v1/sessions/:id`, `:id{[0-9]+}`, `*`) as a regular expression. */
function patternOf(path: string): RegExp {
  return new RegExp(`^${sourceOf(path)}$`);
}

function sourceOf(path: string): string {
  return path
    .split("/")
    .map((segment) => {
      if (segment === "*") return ".*";
      if (segment.startsWith(":")) return segment.endsWith("?") ? "[^/]*" : "[^/]+";
      return escapeRegExp(segment);
    })
    .join("/");
}

/**
 * Builds the lookup once per route table. The answer lists the methods in a stable order,
 * adding HEAD wherever GET is served (Hono answers HEAD with the GET handler) and OPTIONS
 * (CORS preflights are answered on every path); empty when no route has this path.
 */
export function allowIndex(routes: readonly RouteEntry[]): (pathname: string) => string[] {
  const concrete = routes
    .filter((r) => r.method !== "ALL" && r.method !== "OPTIONS")
    .map((r) => ({ method: r.method.toUpperCase(), pattern: patternOf(r.path) }));
  return (pathname) => {
    const methods = new Set<string>();
    for (const { method, pattern } of concrete) if (pattern.test(pathname)) methods.add(method);
    if (methods.size === 0) return [];
    if (methods.has("GET")) methods.add("HEAD");
    methods.add("OPTIONS");
    const order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    return [...methods].sort((a, b) => order.indexOf(a) - order.indexOf(b));
  };
}

/**
 * Whether a pathname is the path of one of `routes` (whatever their methods): one regular
 * expression for all of them, built once, so a request pays one test, not one per route.
 */
export function pathIndex(routes: readonly RouteEntry[]): (pathname: string) => boolean {
  if (routes.length === 0) return () => false;
  const any = new RegExp(`^(?:${[...new Set(routes.map((r) => sourceOf(r.path)))].join("|")})$`);
  return (pathname) => any.test(pathname);
}
