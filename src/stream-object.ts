/**
 * The worker's Stream Durable Object: the generic stream of src/streams, given the sessions'
 * read views (src/sessions/stream-views.ts). The streams layer stays free of sessions; this
 * is where the app puts the two together.
 */
import type { Env } from "./env";
import { sessionReadViews } from "./sessions/stream-views";
import { StreamObject } from "./streams/stream-do";

export class StreamDurableObject extends StreamObject {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, sessionReadViews);
  }
}
