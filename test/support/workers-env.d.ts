/**
 * Types for `env` and `exports` from "cloudflare:workers" inside the workerd tests: the
 * production bindings (src/env.ts) plus the test-only ones vitest.config.ts adds, declared
 * once here so that no test casts `env` to reach them.
 */
import type { D1Migration } from "cloudflare:test";
import type { Env as WorkerEnv } from "../../src/env";
import type { FixtureNamespace, HostStub, SubscriberStub } from "./fixtures";

declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {
      /** Processor hosts of test/fixtures/worker.ts (see test/support/fixtures.ts). */
      TEST_HOSTS: FixtureNamespace<HostStub>;
      /** Recording subscribers of test/fixtures/worker.ts. */
      TEST_SUBSCRIBERS: FixtureNamespace<SubscriberStub>;
      /** ./migrations as read by vitest.config.ts (applied by workers-setup.ts). */
      TEST_MIGRATIONS: D1Migration[];
    }
    interface GlobalProps {
      /** vitest.config.ts runs this worker: the production app plus test-only objects. */
      mainModule: typeof import("../fixtures/worker");
      durableNamespaces: "StreamDurableObject";
    }
  }
}
