import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  plugins: [
    cloudflareTest({
      // The production worker plus test-only Durable Objects (test/fixtures/worker.ts).
      main: "./test/fixtures/worker.ts",
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: {
          LONG_POLL_TIMEOUT_MS: "1000",
          SSE_MAX_DURATION_MS: "5000",
          CALLABLE_BINDINGS: "TEST_HOSTS,TEST_SUBSCRIBERS",
          ALLOW_LOOPBACK_WEBHOOKS: "false",
          DELIVERY_RETRY_BASE_MS: "50",
          DELIVERY_RETRY_MAX_MS: "400",
        },
        durableObjects: {
          TEST_HOSTS: { className: "TestHost", useSQLite: true },
          TEST_SUBSCRIBERS: { className: "TestSubscriber", useSQLite: true },
        },
      },
    }),
  ],
  test: {
    include: ["test/workers/**/*.test.ts", "test/unit/**/*.test.ts"],
  },
});
