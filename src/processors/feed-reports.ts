/**
 * What a host owes a stream about feeding itself (streams/feed-leases.ts), when no append of
 * its own carries it: acknowledgements once its processors have been idle for ACK_IDLE_MS (a
 * turn's appends follow each other closer than that, so most ride along; the last of a burst
 * costs one small call instead of a delivery per processor), and at once a lease given back
 * when a feed falls short. A failed report only means the stream delivers instead.
 */
import type { FeedReport } from "../streams/stream-rpc";
import { trace } from "../trace";
import type { LocalFeedState } from "./local-feed";

/** How long acknowledgements wait for an append to carry them before they go alone. */
const ACK_IDLE_MS = 50;

export interface FeedReportsDeps {
  feeds: LocalFeedState;
  /** The processors bound to a stream (whose acknowledgements a report carries). */
  boundTo(streamName: string): string[];
  send(streamName: string, report: FeedReport): Promise<unknown>;
  /** Keeps a report alive past the call that started it. */
  background(work: Promise<unknown>): void;
}

export class FeedReports {
  /** Streams with acknowledgements waiting for an append to carry them. */
  readonly #timers = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(private readonly deps: FeedReportsDeps) {}

  /** Acknowledgements are owed to a stream: sent with the next append, or alone if none comes soon. */
  owe(streamName: string): void {
    if (this.#timers.has(streamName)) return;
    const timer = setTimeout(() => {
      this.#timers.delete(streamName);
      this.deps.background(this.#report(streamName, []));
    }, ACK_IDLE_MS);
    this.#timers.set(streamName, timer);
  }

  /** A processor's feed fell short: the stream delivers to it again (with any acks owed). */
  release(name: string, streamName: string): void {
    const key = this.deps.feeds.leaseKey(name);
    if (key !== null) this.deps.background(this.#report(streamName, [key]));
  }

  async #report(streamName: string, release: string[]): Promise<void> {
    const names = this.deps.boundTo(streamName);
    const acks = this.deps.feeds.takeAcks(names);
    if (acks.length === 0 && release.length === 0) return;
    trace("host.report", () => ({ stream: streamName, acks: acks.length, release }));
    try {
      await this.deps.send(streamName, { acks, release });
    } catch (error) {
      this.deps.feeds.restore(names, acks);
      console.warn(
        JSON.stringify({
          msg: "feed acknowledgement failed; the stream delivers instead",
          stream: streamName,
          error: String((error as Error)?.message ?? error),
        }),
      );
    }
  }
}
