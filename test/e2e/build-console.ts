/**
 * Vitest global setup for the end-to-end suite: builds the web console (public/console,
 * served by wrangler as the worker's static assets) from the current source, so the browser tests
 * never run against a stale or missing build.
 */
import { buildConsole } from "../support/console-build";

export default async function setup(): Promise<void> {
  await buildConsole({ force: true });
}
