/**
 * How this app reaches its streams from a Durable Object: the Stream DO stub of a stream,
 * its answers unwrapped (src/rpc/result.ts), and the same as the `ProcessorStreams` a
 * ProcessorHost is given (processors/ never sees the Env).
 */
import type { Env } from "../env";
import type { ProcessorHost, ProcessorStreams } from "../processors/host";
import type { FeedTarget } from "../processors/local-feed";
import { rpcClient, type Unwrapped } from "../rpc/result";
import type { StreamRpc } from "../streams/stream-rpc";
import { streamStub } from "../streams/stub";

/** The stream RPC a SessionAgent (and a processor host) calls, unwrapped. */
export type StreamAccess = Unwrapped<StreamRpc>;

/** The stream named `name` (`tenant:path`), answers unwrapped. */
export function streamAccess(streams: Env["STREAMS"], name: string): StreamAccess {
  return rpcClient(streamStub({ STREAMS: streams }, name));
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

/**
 * `stream`'s appends, each answer fed to `host` at once (ProcessorHost.feed): the processors
 * need not wait for the stream to deliver their owner's own appends back.
 */
export function feedingAppends(
  stream: StreamAccess,
  host: Pick<ProcessorHost, "feed">,
  target: FeedTarget,
): Pick<StreamAccess, "appendBatch"> {
  return {
    appendBatch: async (...args) => {
      const committed = await stream.appendBatch(...args);
      void host.feed(target, committed);
      return committed;
    },
  };
}
