/**
 * The interactive API reference at /docs: Scalar's renderer over /openapi.json. The renderer
 * loads its script from a CDN by default; here it comes from the worker's own static assets
 * (public/docs/scalar.js, copied from the pinned npm package by scripts/docs-assets.mjs), and
 * the features that call out (hosted fonts, telemetry, the AI agent) are off, so the page
 * works offline and sends nothing elsewhere.
 */
import { Scalar } from "@scalar/hono-api-reference";

/** Served from static assets (wrangler.toml [assets]). */
export const DOCS_SCRIPT_PATH = "/docs/scalar.js";

export const docsPage = () =>
  Scalar({
    url: "/openapi.json",
    cdn: DOCS_SCRIPT_PATH,
    pageTitle: "Durable agent sessions: API reference",
    withDefaultFonts: false,
    telemetry: false,
    agent: { disabled: true },
  });
