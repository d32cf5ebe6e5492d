import { DomainError, internal, isFault, notFound } from "../errors/domain";
import { type RpcResult, rpcFail, rpcOk } from "../rpc/result";
import type { DeliveryBatch } from "../streams/delivery";
import type { EventInput, StreamEvent } from "../streams/messages";
import type { FeedReport, SelfFeed } from "../streams/stream-rpc";
import type { StartAt } from "../streams/system-events";
import { trace } from "../trace";
import { CheckpointWaiters } from "./checkpoint-waiters";
import { type AnyContract, consumedTypeSet, consumedTypes, type StateOf } from "./contract";
import { FeedReports } from "./feed-reports";
import { owedAfter, predictedBatch } from "./fused-appends";
import { processorOfKey, subscriptionKeyFor } from "./keys";
import { type FeedTarget, LocalFeedState } from "./local-feed";
import {
  type AppendRequest,
  currentRun,
  type ProcessorRun,
  type ProcessorTables,
  type StreamProcessor,
} from "./processor";
import { reduceBatch } from "./reduce-batch";
import { ProcessorStateStore } from "./state-store";

export { processorOfKey, processorTableName, subscriptionKeyFor } from "./keys";

export interface HostIdentity {
  /** The binding under which the Stream DO reaches this host (`binding:method` must be on CALLABLE_BINDINGS). */
  binding: string;
  /** The RPC method that forwards to `host.deliver` (default `deliver`). */
  method?: string;
}

/** The subscription a host asks a stream for, on behalf of one of its processors. */
export interface ProcessorSubscription {
  key: string;
  callable: { kind: "durable-object"; binding: string; name: string; method: string };
  eventTypes: string[];
  startAt: StartAt;
}

/**
 * What a host needs of the streams its processors consume, given by its owner: the host
 * itself never learns how streams are reached (bindings, the app's Env).
 */
export interface ProcessorStreams {
  configureSubscription(streamName: string, subscription: ProcessorSubscription): Promise<unknown>;
  /**
   * Appends as a processor (processor idempotency keys are reserved for processors), with what
   * this host says about feeding itself (streams/feed-leases.ts) and, for a fused append, its
   * guards (./fused-appends.ts).
   */
  appendAsProcessor(
    streamName: string,
    events: EventInput[],
    options: FeedingOptions,
  ): Promise<StreamEvent[]>;
  /** Acknowledges what local feeds brought, and gives back leases, without an append. */
  acknowledgeFeeds(streamName: string, report: FeedReport): Promise<unknown>;
}

/** What an append made through `appendFeeding` adds to the caller's options. */
export interface FeedingOptions {
  selfFeed?: SelfFeed;
  /** A fused append: it lands right after the tail the host knows, all new, or not at all. */
  expectedOffset?: number;
  onlyNew?: boolean;
}

export class ProcessorHost {
  readonly #processors = new Map<string, StreamProcessor<AnyContract>>();
  readonly #queues = new Map<string, Promise<unknown>>();
  readonly #store: ProcessorStateStore;
  readonly #waiters = new CheckpointWaiters();
  /** What local feeds may reduce (./local-feed.ts). */
  readonly #feeds = new LocalFeedState();
  /** Processors whose last batch failed: nothing is fused on their behalf until one succeeds. */
  readonly #failing = new Set<string>();
  /** Per processor, how many tasks are queued or running (absent: idle). */
  readonly #busy = new Map<string, number>();
  /** Acknowledgements and released leases no append carries (./feed-reports.ts). */
  readonly #reports: FeedReports;

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly streams: ProcessorStreams,
    private readonly identity: HostIdentity,
  ) {
    this.#store = new ProcessorStateStore(ctx.storage);
    this.#reports = new FeedReports({
      feeds: this.#feeds,
      boundTo: (streamName) => this.#boundTo(streamName),
      send: (streamName, report) => streams.acknowledgeFeeds(streamName, report),
      background: (work) => ctx.waitUntil(work),
    });
  }

  // biome-ignore lint/suspicious/noExplicitAny: a host holds processors of any contract
  register<P extends StreamProcessor<any>>(name: string, processor: P): P {
    if (!/^[a-z][a-z0-9-]{0,62}$/.test(name))
      throw new Error(`processor name ${JSON.stringify(name)} must be kebab-case`);
    if (this.#processors.has(name)) throw new Error(`processor ${name} is registered twice`);
    this.#store.createTables(name, processor);
    this.#processors.set(name, processor);
    return processor;
  }

  /** A processor's own tables (to read its projection outside a batch). */
  tables(name: string): ProcessorTables {
    return this.#store.tables(name, this.#processor(name));
  }

  /** The offset through which a processor's state (and projection) is committed. */
  checkpoint(name: string): number {
    this.#processor(name);
    return this.#store.checkpoint(name);
  }

  /**
   * Resolves once a commit has brought the processor through `offset` (at once if it already
   * has); rejects after `timeoutMs`, or when `failWaiters` gives up on the processor, so a
   * caller never waits in silence.
   */
  waitForCheckpoint(name: string, offset: number, timeoutMs = 30_000): Promise<void> {
    if (this.checkpoint(name) >= offset) return Promise.resolve();
    return this.#waiters.wait(
      name,
      offset,
      timeoutMs,
      () =>
        new Error(
          `processor ${name} did not reach offset ${offset} within ${timeoutMs} ms (at ${this.checkpoint(name)})`,
        ),
    );
  }

  /** How many `waitForCheckpoint` calls are waiting on a processor. */
  pendingWaits(name: string): number {
    return this.#waiters.pending(name);
  }

  /** Fails every pending `waitForCheckpoint` on a processor that cannot get there (e.g. parked). */
  failWaiters(name: string, error: Error): void {
    this.#waiters.fail(name, error);
  }

  #processor(name: string): StreamProcessor<AnyContract> {
    const processor = this.#processors.get(name);
    if (!processor) throw notFound(`no processor named ${JSON.stringify(name)} on this host`);
    return processor;
  }

  /** The processor's stored state (validated with its schema, defaults applied) and checkpoint. */
  snapshot<K extends AnyContract>(name: string): { state: StateOf<K>; checkpoint: number } {
    return this.#store.snapshot<K>(name, this.#processor(name));
  }

  /** Forgets a processor's state, checkpoint and table rows (to rebuild it from its stream). */
  reset(name: string): void {
    this.#feeds.forget(name);
    this.#store.reset(name, this.#processor(name));
  }

  state<K extends AnyContract>(name: string): StateOf<K> {
    return this.snapshot<K>(name).state;
  }

  /** Subscribes a registered processor to a stream (idempotent for the same settings). */
  async subscribe(
    name: string,
    options: { streamName: string; hostName: string; startAt?: StartAt },
  ) {
    const processor = this.#processor(name);
    this.#store.bind(name, options.streamName);
    return this.streams.configureSubscription(options.streamName, {
      key: subscriptionKeyFor(name, this.identity.binding, options.hostName),
      callable: {
        kind: "durable-object",
        binding: this.identity.binding,
        name: options.hostName,
        method: this.identity.method ?? "deliver",
      },
      eventTypes: consumedTypes(processor.contract),
      startAt: options.startAt ?? "beginning",
    });
  }

  /**
   * Runs a processor's `processBatch` on its stored state with no new events — for work that
   * must resume without a delivery (after a restart, on an alarm). Queued like a batch.
   */
  reconcile(name: string, stream: { stream: string; streamName: string }): Promise<void> {
    const { checkpoint } = this.snapshot(name);
    const batch: DeliveryBatch = {
      ...stream,
      subscriptionKey: `${name}@reconcile`,
      anchorOffset: checkpoint,
      events: [],
      nextOffset: checkpoint + 1,
    };
    return this.#enqueue(name, () => this.#process(name, batch, true)).then(() => undefined);
  }

  /**
   * Local feed: `committed` are events just appended to `target`, as the stream answered them
   * (committed, with offsets). Each processor bound to that stream is fed the run of them that
   * continues exactly where it has seen the stream through, queued after its batches like a
   * delivery; one with a gap before them is left to its delivery. Never rejects: a failed feed
   * wrote nothing and the delivery brings the same events. Resolves once every feed has run.
   */
  feed(target: FeedTarget, committed: StreamEvent[]): Promise<void> {
    if (committed.length === 0) return Promise.resolve();
    const failed = (name: string) => (error: unknown) => {
      console.warn(
        JSON.stringify({
          msg: "local feed failed; the delivery brings the events again",
          processor: name,
          stream: target.stream,
          offsets: committed.map((e) => e.offset),
          error: String((error as Error)?.message ?? error),
        }),
      );
      this.#reports.release(name, target.streamName);
    };
    this.#feeds.knowPath(target);
    const feeds: Promise<unknown>[] = [];
    for (const name of this.#boundTo(target.streamName)) {
      this.#feeds.committed(name, consumedTypeSet(this.#processor(name).contract), committed);
      // Called right after a commit: nothing here may throw into the appender's call.
      const fed = this.#enqueue(name, () => this.#feedOne(name, target, committed));
      feeds.push(fed.catch(failed(name)));
    }
    return Promise.all(feeds).then(() => undefined);
  }

  async #feedOne(
    name: string,
    target: FeedTarget,
    committed: StreamEvent[],
  ): Promise<{ ackOffset: number }> {
    const checkpoint = this.#store.checkpoint(name);
    const consumes = consumedTypeSet(this.#processor(name).contract);
    const plan = this.#feeds.plan(name, target, committed, checkpoint, consumes);
    if (plan.kind === "skip") {
      trace("host.feed.skipped", () => ({
        stream: target.stream,
        processor: name,
        offsets: committed.map((e) => e.offset),
        seen: plan.seen,
      }));
      // Events it cannot feed: the stream may be holding them for the feed, let them go.
      if (plan.gap) this.#reports.release(name, target.streamName);
      return { ackOffset: checkpoint };
    }
    let ack = { ackOffset: checkpoint };
    if (plan.kind === "reduce") {
      trace("host.feed", () => ({
        stream: target.stream,
        processor: name,
        offsets: plan.batch.events.map((e) => e.offset),
        through: plan.through,
      }));
      ack = await this.#process(name, plan.batch);
    }
    this.#feeds.advance(name, plan.through);
    this.#reports.owe(target.streamName);
    return ack;
  }

  /** The processors bound to a stream. */
  #boundTo(streamName: string): string[] {
    return [...this.#processors.keys()].filter((n) => this.#store.boundTo(n) === streamName);
  }

  /**
   * Appends `events` to `streamName` through `send`, saying what this host feeds itself (the
   * claim and the acknowledgements owed; handed back if the append fails), with what its idle
   * processors owe because of them fused in when that can be predicted (./fused-appends.ts),
   * then feeds the answer to the processors bound to it. Answers the committed `events` (not
   * the fused ones). Every append this host or its owner makes goes through here.
   */
  async appendFeeding(
    streamName: string,
    events: EventInput[],
    send: (events: EventInput[], options: FeedingOptions) => Promise<StreamEvent[]>,
    target: FeedTarget | null = this.#feeds.targetOf(streamName),
    { fuse = true }: { fuse?: boolean } = {},
  ): Promise<StreamEvent[]> {
    const names = this.#boundTo(streamName);
    const claim = target === null ? null : this.#feeds.claim(names);
    const selfFeed = claim ? { selfFeed: claim } : {};
    let committed: StreamEvent[] | null = null;
    try {
      const fused = target === null || !fuse ? null : this.#fuse(target, names, events);
      if (fused) {
        try {
          committed = await send([...events, ...fused.owed], {
            ...selfFeed,
            expectedOffset: fused.expectedOffset,
            onlyNew: true,
          });
          trace("host.fused", () => ({
            stream: streamName,
            offsets: committed!.map((e) => e.offset),
            owed: fused.owed.map((e) => e.type),
          }));
        } catch (error) {
          // The prediction did not hold (another append came first, a repeat) or the stream
          // refused the whole: nothing was written, so append the events alone, as unfused.
          if (!(error instanceof DomainError) || isFault(error.code)) throw error;
        }
      }
      committed ??= await send(events, selfFeed);
    } catch (error) {
      if (claim) this.#feeds.restore(names, claim.acks);
      throw error;
    }
    if (target !== null) {
      this.#feeds.noteTail(target, committed);
      // Not awaited: an appending processor's own feed queues behind the batch it is in.
      void this.feed(target, committed);
    }
    return committed.slice(0, events.length);
  }

  /**
   * What idle processors owe because of `events`, if those are committed right after the tail
   * this host knows: each processor that declares `owed`, has nothing queued, knows its
   * subscription and has seen the stream exactly to that tail. Null when there is nothing to
   * fuse or it cannot be predicted (a failure to reduce ahead is the processor's to meet later).
   */
  #fuse(
    target: FeedTarget,
    names: string[],
    events: EventInput[],
  ): { owed: AppendRequest[]; expectedOffset: number } | null {
    const tail = this.#feeds.tailOf(target.streamName);
    if (tail === null) return null;
    const owed: AppendRequest[] = [];
    for (const name of names) {
      const processor = this.#processor(name);
      if (!processor.owed || this.#busy.has(name) || this.#failing.has(name)) continue;
      if (this.#feeds.leaseKey(name) === null) continue;
      try {
        const { state, checkpoint } = this.snapshot(name);
        if (this.#feeds.seenThrough(name, checkpoint) !== tail) continue;
        const anchor = this.#feeds.anchorOf(name)!;
        const batch = predictedBatch(target, events, tail, anchor, new Date().toISOString());
        owed.push(...owedAfter(name, processor, state, checkpoint, batch));
      } catch {
        return null;
      }
    }
    return owed.length === 0 ? null : { owed, expectedOffset: tail + 1 };
  }

  /** Runs `task` for a processor after everything already queued for it (batches, feeds). */
  #enqueue<T>(name: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(name) ?? Promise.resolve();
    this.#busy.set(name, (this.#busy.get(name) ?? 0) + 1);
    const next = previous
      .catch(() => undefined)
      .then(() => task())
      .finally(() => {
        const left = (this.#busy.get(name) ?? 1) - 1;
        if (left === 0) this.#busy.delete(name);
        else this.#busy.set(name, left);
      });
    this.#queues.set(name, next);
    return next;
  }

  /**
   * Entry point for deliveries: routes the batch to the processor named by its subscription
   * key. A failed batch answers `{ ok: false, error }` rather than throwing an exception
   * workerd would log as uncaught here too. Its code decides what the stream does next
   * (`RETRYABLE` in src/errors/domain.ts): a failure of the work (`internal`) is retried with
   * backoff; a refusal that would only repeat (no such processor, bound to another stream,
   * corrupt stored state) parks the subscription at once.
   */
  async deliver(batch: DeliveryBatch): Promise<RpcResult<{ ackOffset: number }>> {
    try {
      return rpcOk(await this.deliverTo(processorOfKey(batch.subscriptionKey), batch));
    } catch (error) {
      return rpcFail(
        error instanceof DomainError ? error : internal(String((error as Error)?.message ?? error)),
      );
    }
  }

  /** Processes a batch for one processor, after any batch already running for it. */
  deliverTo(name: string, batch: DeliveryBatch): Promise<{ ackOffset: number }> {
    this.#processor(name);
    return this.#enqueue(name, () => {
      // What the stream delivers tells the key and anchor of the processor's subscription.
      this.#feeds.delivered(name, batch.subscriptionKey, batch.anchorOffset);
      return this.#process(name, batch);
    });
  }

  /** Processes a batch, remembering whether the processor's last batch failed (see #fuse). */
  async #process(
    name: string,
    batch: DeliveryBatch,
    reconcile = false,
  ): Promise<{ ackOffset: number }> {
    try {
      const ack = await this.#runBatch(name, batch, reconcile);
      this.#failing.delete(name);
      return ack;
    } catch (error) {
      this.#failing.add(name);
      throw error;
    }
  }

  async #runBatch(
    name: string,
    batch: DeliveryBatch,
    reconcile: boolean,
  ): Promise<{ ackOffset: number }> {
    const processor = this.#processor(name);
    const _contract = processor.contract;
    this.#store.bind(name, batch.streamName);
    this.#feeds.knowPath(batch);
    const through = Math.max(batch.nextOffset - 1, ...batch.events.map((e) => e.offset));
    const seen = this.#store.checkpoint(name);
    trace("host.batch", () => ({
      stream: batch.stream,
      processor: name,
      offsets: batch.events.map((e) => e.offset),
      types: batch.events.map((e) => e.type),
      checkpoint: seen,
    }));
    // Already processed (a delivery after a local feed): nothing to read or reduce.
    if (through <= seen && !reconcile) return { ackOffset: seen };
    const { state: stored, checkpoint } = this.snapshot(name);

    const { state, reduced, sideEffects } = reduceBatch(name, processor, stored, checkpoint, batch);

    const blocking: Promise<unknown>[] = [];
    const runFor = (sourceOffset: number): ProcessorRun => ({
      processor: name,
      stream: batch.stream,
      streamName: batch.streamName,
      sourceOffset,
      blocking,
      background: (work) => this.#background(name, batch, sourceOffset, work),
      appendTo: (streamName, events) => this.#append(streamName, events),
      newerCommitted: () => this.#feeds.committedAfter(name, sourceOffset),
    });
    for (const effect of sideEffects) {
      if (!processor.processEvent) break;
      await currentRun.run(runFor(effect.event.offset), () =>
        processor.processEvent!({ ...effect, stream: batch.stream }),
      );
    }
    if (processor.processBatch) {
      await currentRun.run(runFor(through), () =>
        processor.processBatch!({
          events: sideEffects.map((s) => s.event),
          previousState: stored,
          state,
          anchorOffset: batch.anchorOffset,
          checkpoint: through,
          stream: batch.stream,
        }),
      );
    }
    // Blocking work may add more blocking work; wait until none is left.
    for (let settled = 0; settled < blocking.length; ) {
      const upTo = blocking.length;
      await Promise.all(blocking.slice(settled, upTo));
      settled = upTo;
    }
    if (through > checkpoint) {
      this.#store.commit(name, processor, state, through, reduced);
      this.#waiters.wake(name, through);
    }
    trace("host.committed", () => ({ stream: batch.stream, processor: name, checkpoint: through }));
    return { ackOffset: Math.max(through, checkpoint) };
  }

  #background(name: string, batch: DeliveryBatch, offset: number, work: Promise<unknown>): void {
    this.ctx.waitUntil(
      work.catch((error) => {
        console.error(
          JSON.stringify({
            msg: "processor background work failed",
            processor: name,
            stream: batch.stream,
            offset,
            error: String((error as Error)?.message ?? error),
          }),
        );
      }),
    );
  }

  async #append(streamName: string, events: AppendRequest[]): Promise<StreamEvent[]> {
    trace("host.append", () => ({
      stream: streamName,
      processor: currentRun.getStore()?.processor,
      types: events.map((e) => e.type),
    }));
    // Processor keys (`<processor>/<key>@<offset>`) are reserved for processors' own appends.
    const committed = await this.appendFeeding(streamName, events, (all, options) =>
      this.streams.appendAsProcessor(streamName, all, options),
    );
    trace("host.appended", () => ({ stream: streamName, offsets: committed.map((e) => e.offset) }));
    return committed;
  }
}
