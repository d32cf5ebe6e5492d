import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/conformance/**/*.test.ts"],
    globalSetup: ["test/conformance/global-setup.ts"],
    environment: "node",
    hookTimeout: 90_000,
  },
});
