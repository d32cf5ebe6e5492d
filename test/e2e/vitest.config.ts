import { defineConfig } from "vitest/config";

// End-to-end flows against the real `wrangler dev` server (started by the tests themselves).
export default defineConfig({
  test: {
    include: ["test/e2e/**/*.test.ts"],
    environment: "node",
    // Builds the web console once (the browser tests load it from wrangler dev).
    globalSetup: ["test/e2e/build-console.ts"],
    testTimeout: 240_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
