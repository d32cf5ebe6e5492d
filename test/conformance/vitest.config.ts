import { defineConfig } from "vitest/config";

// The suite's own tests keep vitest's 5 s default unless the config raises it; on a loaded
// 2-core machine its fast-check property tests (hundreds of HTTP round trips each) can take
// longer than that while other dev servers run. The suite's code stays unmodified.
export default defineConfig({
  test: {
    include: ["test/conformance/**/*.test.ts"],
    globalSetup: ["test/conformance/global-setup.ts"],
    environment: "node",
    testTimeout: 60_000,
    hookTimeout: 90_000,
  },
});
