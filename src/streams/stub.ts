/** The one way to reach a stream's Durable Object: a stub typed by the declared StreamRpc. */
import { durableIdFromName } from "../durable-ids";
import type { Env } from "../env";
import type { StreamStub } from "./stream-rpc";

/**
 * A fresh stub of the stream with this Durable Object name (see naming.ts); its id is computed
 * once per name (src/durable-ids.ts), the stub never reused.
 */
export function streamStub(env: Pick<Env, "STREAMS">, name: string): StreamStub {
  return env.STREAMS.get(durableIdFromName(env.STREAMS, name));
}
