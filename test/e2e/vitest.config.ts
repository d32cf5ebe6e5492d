import { defineConfig } from "vitest/config";

// End-to-end flows against the real `wrangler dev` server (started by the tests themselves).
export default defineConfig({
  test: {
    include: ["test/e2e/**/*.test.ts"],
    environment: "node",
    testTimeout: 240_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
