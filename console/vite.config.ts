/**
 * Builds the web console into public/console, which wrangler serves at /console/ as the
 * worker's static assets ([assets] in wrangler.toml). Everything is bundled: the page loads nothing from
 * another origin, so it works offline. Preact's automatic JSX runtime, through Vite's Oxc.
 */
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const root = fileURLToPath(new URL(".", import.meta.url));

export default defineConfig({
  root,
  base: "/console/",
  publicDir: "public",
  // `@server/client` is the shipped typed client (src/client); see tsconfig.json for types.
  resolve: { alias: { "@server": fileURLToPath(new URL("../src", import.meta.url)) } },
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: fileURLToPath(new URL("../public/console", import.meta.url)),
    emptyOutDir: true,
    target: "es2022",
    // One small bundle; no inline data URLs (the page's CSP allows only same-origin files).
    assetsInlineLimit: 0,
    sourcemap: false,
    reportCompressedSize: true,
  },
  logLevel: "warn",
});
