/**
 * Copies the API reference renderer (Scalar's standalone bundle, from the pinned npm package
 * @scalar/api-reference) into the worker's static assets, so that /docs works offline instead
 * of loading its script from a CDN. Run by postinstall (with --optional: an install without dev
 * dependencies still succeeds), `npm run dev`/`deploy` and the test config; the copy is
 * generated, not committed.
 */
import { copyFileSync, mkdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export const DOCS_SCRIPT = join(root, "public", "docs", "scalar.js");

export function copyDocsAssets({ optional = false } = {}) {
  const source = join(root, "node_modules/@scalar/api-reference/dist/browser/standalone.js");
  if (optional && !statSync(source, { throwIfNoEntry: false })) {
    console.warn("docs-assets: @scalar/api-reference is not installed; /docs will lack its script");
    return;
  }
  const current = statSync(DOCS_SCRIPT, { throwIfNoEntry: false });
  const wanted = statSync(source);
  if (current && current.size === wanted.size && current.mtimeMs >= wanted.mtimeMs) return;
  mkdirSync(dirname(DOCS_SCRIPT), { recursive: true });
  copyFileSync(source, DOCS_SCRIPT);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  copyDocsAssets({ optional: process.argv.includes("--optional") });
}
