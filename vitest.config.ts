import { fileURLToPath } from "node:url";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { copyDocsAssets } from "./scripts/docs-assets.mjs";

// The /docs script is a static asset copied from node_modules (wrangler.toml [assets]).
copyDocsAssets();

// The D1 migrations, applied inside workerd by test/support/workers-setup.ts.
const migrations = await readD1Migrations("./migrations");

const workers = (name: string, include: string[], bindings: Record<string, unknown> = {}) => ({
  plugins: [
    cloudflareTest({
      // The production worker plus test-only Durable Objects (test/fixtures/worker.ts).
      main: "./test/fixtures/worker.ts",
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: {
          LONG_POLL_TIMEOUT_MS: "1000",
          SSE_MAX_DURATION_MS: "5000",
          // `BINDING:method` pairs; receiveWithoutAck is a subscriber that answers no ack.
          CALLABLE_BINDINGS:
            "SESSIONS:deliver,TEST_HOSTS:deliver,TEST_SUBSCRIBERS:receive,TEST_SUBSCRIBERS:receiveWithoutAck",
          ALLOW_LOOPBACK_WEBHOOKS: "false",
          DELIVERY_RETRY_BASE_MS: "50",
          DELIVERY_RETRY_MAX_MS: "400",
          // Park a subscription after 6 failed attempts in a row (≈1.2 s of backoff here).
          DELIVERY_MAX_ATTEMPTS: "6",
          // A self-feeding writer's lease (streams/feed-leases.ts): short, so expiry is testable.
          DELIVERY_FEED_LEASE_MS: "1500",
          // Auth: the dev key and admin token of .dev.vars, and (test only) requests without
          // an Authorization header act as tenant "default", so tests that do not care about
          // auth need no key. Auth tests send explicit (bad) keys.
          DEV_TENANT_ID: "dev",
          DEV_API_KEY: "das_dev_local_development_key_0000",
          ADMIN_TOKEN: "dev-admin-token",
          INSECURE_DEFAULT_TENANT: "default",
          // Signs session tokens in tests (a test value; real ones come from wrangler secret put).
          SESSION_TOKEN_SECRET: "test-session-token-secret-0123456789abcdef",
          TEST_MIGRATIONS: migrations,
          ...bindings,
        },
        durableObjects: {
          TEST_HOSTS: { className: "TestHost", useSQLite: true },
          TEST_SUBSCRIBERS: { className: "TestSubscriber", useSQLite: true },
        },
      },
    }),
  ],
  test: { name, include, setupFiles: ["./test/support/workers-setup.ts"], testTimeout: 30_000 },
});

/**
 * Three tiers (README "Tests and benchmarks"): pure logic in plain Node (project "unit", no
 * workerd, seconds); Durable Objects, D1 and routes inside workerd ("workers",
 * "sessions-slow"); user flows against `wrangler dev` (test/e2e, test/conformance: own configs).
 */
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          environment: "node",
          alias: {
            "cloudflare:workers": fileURLToPath(
              new URL("./test/support/node-workers-env.ts", import.meta.url),
            ),
          },
        },
      },
      workers("workers", ["test/workers/**/*.test.ts"], {
        // Large enough that a 2 MB message reaches the scripted model whole (sessions-large).
        MODEL_CONTENT_MAX_BYTES: "2500000",
      }),
      // Sessions whose scripted model is slow enough to be caught mid-turn, and whose model
      // retries back off quickly: crash, cancel and failure tests.
      workers("sessions-slow", ["test/sessions/**/*.test.ts"], {
        SCRIPTED_MODEL_DELAY_MS: "25",
        MODEL_RETRY_BASE_MS: "10",
        // test/sessions/openai.test.ts stubs fetch for this (never contacted) endpoint.
        OPENAI_BASE_URL: "https://llm.example.com/v1",
        OPENAI_API_KEY: "test-openai-key",
      }),
    ],
  },
});
