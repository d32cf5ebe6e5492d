/** Starts one dev server for the whole conformance run and hands its URL to the tests. */
import type { TestProject } from "vitest/node";
import { type DevServer, startDevServer } from "../support/dev-server";

export const LONG_POLL_TIMEOUT_MS = 1500;
let server: DevServer | undefined;

export async function setup(project: TestProject) {
  server = await startDevServer({
    // The suite sends no credentials: INSECURE_DEFAULT_TENANT (a test-only setting) lets
    // requests without an Authorization header act as tenant "conformance".
    vars: {
      LONG_POLL_TIMEOUT_MS: String(LONG_POLL_TIMEOUT_MS),
      INSECURE_DEFAULT_TENANT: "conformance",
    },
    migrate: true,
  });
  project.provide("baseUrl", server.url);
}

export async function teardown() {
  await server?.stop();
}

declare module "vitest" {
  export interface ProvidedContext {
    baseUrl: string;
  }
}
