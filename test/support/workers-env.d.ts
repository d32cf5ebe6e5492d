/** Types for `env` and `exports` from "cloudflare:workers" inside the workerd tests. */
import type { Env as WorkerEnv } from "../../src/env";

declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {}
    interface GlobalProps {
      /** vitest.config.ts runs this worker: the production app plus test-only objects. */
      mainModule: typeof import("../fixtures/worker");
      durableNamespaces: "StreamDurableObject";
    }
  }
}
