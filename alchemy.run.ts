/**
 * The same deployment as wrangler.toml, described with alchemy 0.94 for teams that deploy
 * with `alchemy deploy`. Keep the two in step: one worker, its Durable Object namespaces
 * (SQLite-backed), the D1 database whose migrations live in ./migrations, and the static
 * assets in ./public (the /docs script and the web console: run `npm run build` first).
 * `alchemy dev` needs Cloudflare credentials, so local development uses wrangler.
 */
import alchemy from "alchemy";
import { Assets, D1Database, DurableObjectNamespace, Worker } from "alchemy/cloudflare";
import { copyDocsAssets } from "./scripts/docs-assets.mjs";

const app = await alchemy("durable-agent-sessions");

// The /docs script, copied from node_modules into ./public (see wrangler.toml [assets]), and
// the web console, built into ./public/console by `npm run build` (run it before deploying).
copyDocsAssets();
const assets = await Assets({ path: "./public" });

const db = await D1Database("db", {
  name: "durable-agent-sessions",
  migrationsDir: "./migrations",
});

const streams = DurableObjectNamespace("streams", {
  className: "StreamDurableObject",
  sqlite: true,
});

const sessions = DurableObjectNamespace("sessions", {
  className: "SessionAgent",
  sqlite: true,
});

export const worker = await Worker("worker", {
  name: "durable-agent-sessions",
  entrypoint: "./src/index.ts",
  compatibilityDate: "2026-11-01",
  compatibilityFlags: ["nodejs_compat"],
  // The API always reaches the worker; any other path that is no file in ./public does too.
  assets: { run_worker_first: ["/v1/*", "/admin/*"], not_found_handling: "none" },
  bindings: {
    DB: db,
    ASSETS: assets,
    STREAMS: streams,
    SESSIONS: sessions,
    LONG_POLL_TIMEOUT_MS: "20000",
    SSE_MAX_DURATION_MS: "60000",
    CALLABLE_BINDINGS: "SESSIONS:deliver",
    DEFAULT_MODEL: "scripted",
    SCRIPTED_MODEL_DELAY_MS: "0",
    // Browser origins allowed by CORS (unset: any origin as `*`, for local development only).
    ...(process.env.CORS_ORIGINS ? { CORS_ORIGINS: process.env.CORS_ORIGINS } : {}),
    // Secrets: set ADMIN_TOKEN and SESSION_TOKEN_SECRET (and OPENAI_API_KEY for openai:<model>
    // sessions) in the environment that runs `alchemy deploy`.
    ADMIN_TOKEN: alchemy.secret(process.env.ADMIN_TOKEN),
    SESSION_TOKEN_SECRET: alchemy.secret(process.env.SESSION_TOKEN_SECRET),
    ...(process.env.OPENAI_API_KEY
      ? { OPENAI_API_KEY: alchemy.secret(process.env.OPENAI_API_KEY) }
      : {}),
  },
});

console.log({ url: worker.url });

await app.finalize();
