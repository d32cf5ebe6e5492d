/**
 * The same deployment as wrangler.toml, described with alchemy 0.94 for teams that deploy
 * with `alchemy deploy`. Keep the two in step: one worker, its Durable Object namespaces
 * (SQLite-backed), the D1 database whose migrations live in ./migrations, and the web
 * console's static assets (run `npm run build` first).
 * `alchemy dev` needs Cloudflare credentials, so local development uses wrangler.
 */
import alchemy from "alchemy";
import { Assets, D1Database, DurableObjectNamespace, Worker } from "alchemy/cloudflare";

const app = await alchemy("durable-agent-sessions");

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

// The web console (`npm run build` → dist/console), served by the same worker.
const consoleAssets = await Assets({ path: "./dist/console" });

export const worker = await Worker("worker", {
  name: "durable-agent-sessions",
  entrypoint: "./src/index.ts",
  compatibilityDate: "2026-11-01",
  compatibilityFlags: ["nodejs_compat"],
  assets: { run_worker_first: ["/v1/*", "/admin/*"], not_found_handling: "none" },
  bindings: {
    ASSETS: consoleAssets,
    DB: db,
    STREAMS: streams,
    SESSIONS: sessions,
    LONG_POLL_TIMEOUT_MS: "20000",
    SSE_MAX_DURATION_MS: "60000",
    CALLABLE_BINDINGS: "SESSIONS",
    DEFAULT_MODEL: "scripted",
    SCRIPTED_MODEL_DELAY_MS: "0",
    // Secrets: set ADMIN_TOKEN (and OPENAI_API_KEY for openai:<model> sessions) in the
    // environment that runs `alchemy deploy`.
    ADMIN_TOKEN: alchemy.secret(process.env.ADMIN_TOKEN),
    ...(process.env.OPENAI_API_KEY
      ? { OPENAI_API_KEY: alchemy.secret(process.env.OPENAI_API_KEY) }
      : {}),
  },
});

console.log({ url: worker.url });

await app.finalize();
