/**
 * How this app reaches its streams from a Durable Object: the Stream DO stub of a stream,
 * its answers unwrapped (src/rpc/result.ts), and the same as the `ProcessorStreams` a
 * ProcessorHost is given (processors/ never sees the Env).
 *
 * The one place where a Stream DO stub is viewed through the methods this side calls: the
 * generated `DurableObjectStub<StreamDurableObject>` type is too deep for tsc to compare
 * with them (TS2589), so the view is declared here once, from the class's own method types.
 * (The Stream DO's declared RPC interface replaces it when it lands.)
 */
import type { Env } from "../env";
import type { ProcessorStreams } from "../processors/host";
import { rpcClient, type Unwrapped } from "../rpc/result";
import type { StreamDurableObject } from "../streams/stream-do";

/** The stream RPC a SessionAgent (and a processor host) calls, unwrapped. */
export type StreamAccess = Unwrapped<
  Pick<
    StreamDurableObject,
    | "create"
    | "appendBatch"
    | "read"
    | "head"
    | "close"
    | "listSubscriptions"
    | "resumeDeliveries"
    | "removeSubscription"
    | "configureSubscription"
    | "storageStats"
  >
>;

/** The stream named `name` (`tenant:path`), answers unwrapped. */
export function streamAccess(streams: Env["STREAMS"], name: string): StreamAccess {
  const stub: object = streams.get(streams.idFromName(name));
  return rpcClient(stub) as unknown as StreamAccess;
}

/** The streams a ProcessorHost consumes and appends to, reached through the STREAMS binding. */
export function processorStreams(streams: Env["STREAMS"]): ProcessorStreams {
  return {
    configureSubscription: (name, subscription) =>
      streamAccess(streams, name).configureSubscription(subscription),
    appendAsProcessor: (name, events) =>
      streamAccess(streams, name).appendBatch(events, { asProcessor: true }),
  };
}
