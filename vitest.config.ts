import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: { LONG_POLL_TIMEOUT_MS: "1000", SSE_MAX_DURATION_MS: "5000" },
      },
    }),
  ],
  test: {
    include: ["test/workers/**/*.test.ts", "test/unit/**/*.test.ts"],
  },
});
