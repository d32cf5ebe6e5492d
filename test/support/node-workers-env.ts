/**
 * Stands in for the `cloudflare:workers` module in the Node test tier (vitest.config.ts,
 * project "unit"). Pure modules reach it only through src/trace.ts, which reads `env` for
 * TRACE_TURNS; an empty env leaves tracing off. It exports nothing else on purpose: a unit
 * test whose imports need a Durable Object class or bindings fails to load, which says it
 * belongs in the workerd tier (test/workers).
 */
export const env: Record<string, unknown> = {};
