/**
 * What a local feed may reduce, decided apart from the host that runs it. Events a host has
 * just appended come back committed with their offsets; a processor may reduce them at once
 * (instead of waiting for the stream to deliver them back) only if they continue exactly where
 * it has seen the stream through — its checkpoint, or further when earlier feeds showed it
 * events it does not consume — and lie past its subscription's anchor. Anything else (another
 * writer appended in between, this instance does not know) is left to the delivery.
 *
 * It also keeps what the stream needs so as not to deliver those events back
 * (streams/feed-leases.ts): per processor, its subscription's key and anchor (told by a
 * delivery), which an append claims as fed by this host, and what the feeds have brought it
 * through (the acknowledgements the next append or report carries).
 *
 * Memory only, bounded by the processors and their streams: after an eviction it is empty and
 * every processor falls back to deliveries until one tells it where it stands.
 */
import type { DeliveryBatch } from "../streams/delivery";
import type { StreamEvent } from "../streams/messages";
import type { FeedAck, SelfFeed } from "../streams/stream-rpc";

export interface FeedTarget {
  stream: string;
  streamName: string;
}

/** What to do for one processor with a run of committed events. */
export type FeedPlan =
  /**
   * Leave them to the delivery: `gap` when some are past what it has seen but do not continue
   * from it (another writer's events lie between), else they are all seen or at/under the anchor.
   */
  | { kind: "skip"; seen: number; gap: boolean }
  /** Nothing it consumes: it has just seen the stream through `through`. */
  | { kind: "pass"; through: number }
  /** Reduce `batch` (as a delivery would), then it has seen the stream through `through`. */
  | { kind: "reduce"; batch: DeliveryBatch; through: number };

export class LocalFeedState {
  /** Per processor, the offset a feed has shown it the stream through (past its checkpoint). */
  readonly #seen = new Map<string, number>();
  /** Per processor, the anchor of its subscription as last delivered. */
  readonly #anchors = new Map<string, number>();
  /** Per stream name, its path (a batch names both; an append knows only the name). */
  readonly #paths = new Map<string, string>();
  /** Per processor, its subscription's key (told by a delivery). */
  readonly #keys = new Map<string, string>();
  /** Per processor, what feeds brought it through that the stream has not been told yet. */
  readonly #acks = new Map<string, FeedAck>();
  /** Per processor, the highest offset of an event it consumes seen committed by this host. */
  readonly #latestConsumed = new Map<string, number>();
  /** Per stream name, the highest offset this host's appends were answered with. */
  readonly #tails = new Map<string, number>();

  /** A delivery (or a feed) named this stream's path. */
  knowPath(target: FeedTarget): void {
    this.#paths.set(target.streamName, target.stream);
  }

  /** The stream's target, when a delivery or feed has named its path. */
  targetOf(streamName: string): FeedTarget | null {
    const stream = this.#paths.get(streamName);
    return stream === undefined ? null : { stream, streamName };
  }

  /** A delivery to `name` tells the key and anchor of its subscription. */
  delivered(name: string, key: string, anchorOffset: number): void {
    if (this.#anchors.get(name) !== anchorOffset) this.#acks.delete(name);
    this.#keys.set(name, key);
    this.#anchors.set(name, anchorOffset);
  }

  /** The processor's state was reset: forget what it was shown. */
  forget(name: string): void {
    this.#seen.delete(name);
    this.#anchors.delete(name);
    this.#acks.delete(name);
  }

  /** `committed` (of the processor's stream) was answered to this host: note what it consumes. */
  committed(name: string, consumes: ReadonlySet<string>, committed: readonly StreamEvent[]): void {
    let latest = this.#latestConsumed.get(name) ?? 0;
    for (const event of committed)
      if (event.type !== null && consumes.has(event.type) && event.offset > latest)
        latest = event.offset;
    if (latest > 0) this.#latestConsumed.set(name, latest);
  }

  /**
   * Whether an event the processor consumes, past `offset`, is known committed: it is in the
   * stream, so it reaches the processor (fed or delivered) in a batch of its own.
   */
  committedAfter(name: string, offset: number): boolean {
    return (this.#latestConsumed.get(name) ?? 0) > offset;
  }

  /** An append to the stream was answered with `committed`. */
  noteTail(target: FeedTarget, committed: readonly StreamEvent[]): void {
    const known = this.#tails.get(target.streamName) ?? 0;
    let tail = known;
    for (const event of committed) if (event.offset > tail) tail = event.offset;
    if (tail > known) this.#tails.set(target.streamName, tail);
  }

  /** The stream's tail as this host last saw it (another writer may have moved it since). */
  tailOf(streamName: string): number | null {
    return this.#tails.get(streamName) ?? null;
  }

  /** What the processor has seen the stream through, given its checkpoint. */
  seenThrough(name: string, checkpoint: number): number {
    return Math.max(checkpoint, this.#seen.get(name) ?? 0);
  }

  /** The anchor of the processor's subscription, as a delivery told it (null: not yet). */
  anchorOf(name: string): number | null {
    return this.#anchors.get(name) ?? null;
  }

  /** The subscription key of a processor the stream may hold a lease for (null: none known). */
  leaseKey(name: string): string | null {
    return this.#anchors.has(name) ? (this.#keys.get(name) ?? null) : null;
  }

  /**
   * What an append to a stream says for `names` (the processors bound to it): the subscriptions
   * this host will feed it to, and the acknowledgements owed (taken: hand them back with
   * `restore` if the append fails). Null when there is nothing to say.
   */
  claim(names: Iterable<string>): SelfFeed | null {
    const keys: string[] = [];
    for (const name of names) {
      const key = this.leaseKey(name);
      if (key !== null) keys.push(key);
    }
    const acks = this.takeAcks(names);
    return keys.length === 0 && acks.length === 0 ? null : { keys, acks };
  }

  /** The acknowledgements owed for `names`, taken. */
  takeAcks(names: Iterable<string>): FeedAck[] {
    const acks: FeedAck[] = [];
    for (const name of names) {
      const ack = this.#acks.get(name);
      if (ack === undefined) continue;
      this.#acks.delete(name);
      acks.push(ack);
    }
    return acks;
  }

  /** Acknowledgements that did not reach the stream, owed again (unless overtaken). */
  restore(names: Iterable<string>, acks: readonly FeedAck[]): void {
    for (const name of names) {
      const key = this.#keys.get(name);
      const ack = acks.find((a) => a.key === key);
      if (ack === undefined || this.#anchors.get(name) !== ack.anchorOffset) continue;
      const owed = this.#acks.get(name);
      if (owed === undefined || owed.offset < ack.offset) this.#acks.set(name, ack);
    }
  }

  plan(
    name: string,
    target: FeedTarget,
    committed: StreamEvent[],
    checkpoint: number,
    consumes: ReadonlySet<string>,
  ): FeedPlan {
    const seen = Math.max(checkpoint, this.#seen.get(name) ?? 0);
    const byOffset = new Map(committed.map((e) => [e.offset, e]));
    const run: StreamEvent[] = [];
    for (let next = seen + 1; byOffset.has(next); next++) run.push(byOffset.get(next)!);
    const anchor = this.#anchors.get(name);
    if (run.length === 0)
      return { kind: "skip", seen, gap: committed.some((e) => e.offset > seen) };
    if (anchor !== undefined && anchor >= run[0]!.offset) return { kind: "skip", seen, gap: false };
    const through = run.at(-1)!.offset;
    const events = run
      .filter((e) => e.type !== null && consumes.has(e.type))
      .map(({ idempotencyKey: _key, ...event }) => event);
    if (events.length === 0) return { kind: "pass", through };
    return {
      kind: "reduce",
      through,
      batch: {
        ...target,
        subscriptionKey: `${name}@local`,
        anchorOffset: anchor ?? run[0]!.offset - 1,
        events,
        nextOffset: through + 1,
      },
    };
  }

  /**
   * After a feed ran: the processor has seen the stream through `through`, durably (its
   * checkpoint, or past it only over events it does not consume), which is owed to the stream.
   */
  advance(name: string, through: number): void {
    const seen = Math.max(this.#seen.get(name) ?? 0, through);
    this.#seen.set(name, seen);
    const key = this.leaseKey(name);
    if (key !== null)
      this.#acks.set(name, { key, anchorOffset: this.#anchors.get(name)!, offset: seen });
  }
}
