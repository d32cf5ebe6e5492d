/**
 * Leases for subscribers that feed themselves. A SessionAgent reduces what it appends at once
 * (processors/local-feed.ts); delivering the same events back to it afterwards costs a log
 * read, an RPC and a settle per subscription per commit, and changes nothing. So an append may
 * claim the subscriptions whose subscriber is its writer and feeds itself (`SelfFeed.keys`).
 * While every commit since a subscription's cursor came with such a claim, the subscription is
 * leased: deliveries to it wait, and the writer acknowledges what it has durably processed
 * (`SelfFeed.acks`, on its next append or in `acknowledgeFeeds`), which moves the durable cursor
 * exactly as a delivery's answer would.
 *
 * A lease lives in memory only, and ends when a commit comes without the claim (another
 * writer), when the writer releases it (a gap it cannot feed, a failed feed), on
 * `resumeDeliveries` (the writer restarted), when this instance is evicted, or when it expires
 * (the writer went silent). Then delivery runs from the durable cursor as if there had been no
 * lease. So a lease can delay a delivery by at most its length and never lose or double one:
 * the cursor moves only on an acknowledgement of durable processing.
 */
import type { Subscription } from "./subscriptions";

export class FeedLeases {
  /** Subscription key → when its lease ends (ms since epoch). Bounded by the subscriptions. */
  readonly #until = new Map<string, number>();

  constructor(private readonly leaseMs: () => number) {}

  /** The time the subscription's lease ends, if it holds one now. */
  heldUntil(key: string, now: number): number | null {
    const until = this.#until.get(key);
    if (until === undefined) return null;
    if (until > now) return until;
    this.#until.delete(key);
    return null;
  }

  /**
   * At a commit (inside its transaction): `subs` as they stand before it, `from` the tail before
   * it, `claimed` the keys its writer feeds itself (empty: someone else wrote it). A claimed
   * subscription that is healthy, not out on a call, and either caught up to `from` or already
   * leased (its writer acknowledges as it goes) is leased for another `leaseMs`; every other
   * lease ends, so whatever this commit holds for it is delivered.
   */
  commit(
    subs: readonly Subscription[],
    from: number,
    claimed: ReadonlySet<string>,
    inFlight: ReadonlySet<string>,
    now: number,
  ): void {
    for (const sub of subs) {
      const eligible =
        claimed.has(sub.key) &&
        sub.health === "active" &&
        sub.nextRetryAt === null &&
        !inFlight.has(sub.key) &&
        (sub.cursor >= from || this.heldUntil(sub.key, now) !== null);
      if (eligible) this.#until.set(sub.key, now + this.leaseMs());
      else this.#until.delete(sub.key);
    }
  }

  /** The writer cannot feed these (or restarted): deliver them from their cursors again. */
  release(keys: Iterable<string>): void {
    for (const key of keys) this.#until.delete(key);
  }

  clear(): void {
    this.#until.clear();
  }
}
