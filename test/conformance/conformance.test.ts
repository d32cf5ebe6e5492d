/**
 * The Durable Streams conformance suite (@durable-streams/server-conformance-tests), run
 * unmodified against the real app under `wrangler dev`.
 */
import { runConformanceTests } from "@durable-streams/server-conformance-tests";
import { inject } from "vitest";
import { LONG_POLL_TIMEOUT_MS } from "./global-setup";

runConformanceTests({ baseUrl: inject("baseUrl"), longPollTimeoutMs: LONG_POLL_TIMEOUT_MS });
