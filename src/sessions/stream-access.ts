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
    appendAsProcessor: (name, events, options) =>
      streamAccess(streams, name).appendBatch(events, { ...options, asProcessor: true }),
    acknowledgeFeeds: (name, report) => streamAccess(streams, name).acknowledgeFeeds(report),
  };
}

/**
 * `stream`'s appends made through `host` (ProcessorHost.appendFeeding): each says what the
 * host feeds itself and may carry what its processors owe because of it, and its answer is fed
 * to the processors at once, so they need not wait for the stream to deliver their owner's own
 * appends back. An append with its own `expectedOffset` is sent as it is (not fused).
 */
export function feedingAppends(
  stream: StreamAccess,
  host: Pick<ProcessorHost, "appendFeeding">,
  target: FeedTarget,
): Pick<StreamAccess, "appendBatch"> {
  return {
    appendBatch: (events, options = {}) =>
      host.appendFeeding(
        target.streamName,
        events,
        // Fused events are the processors' own (processor idempotency keys).
        (all, feeding) =>
          stream.appendBatch(all, {
            ...options,
            ...feeding,
            ...(all.length > events.length ? { asProcessor: true } : {}),
          }),
        target,
        { fuse: options.expectedOffset === undefined },
      ),
  };
}
