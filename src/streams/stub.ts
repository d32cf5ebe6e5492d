/** The one way to reach a stream's Durable Object: a stub typed by the declared StreamRpc. */
import type { Env } from "../env";
import type { StreamStub } from "./stream-rpc";

/** The stub of the stream with this Durable Object name (see naming.ts). */
export function streamStub(env: Pick<Env, "STREAMS">, name: string): StreamStub {
  return env.STREAMS.get(env.STREAMS.idFromName(name));
}
