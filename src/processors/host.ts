/**
 * Lets any Durable Object own named processors as plain fields:
 *
 *   class MyObject extends DurableObject<Env> {
 *     host = new ProcessorHost(this.ctx, streamsOf(this.env), { binding: "MY_OBJECTS" });
 *     counter = this.host.register("counter", new CounterProcessor());
 *     deliver(batch: DeliveryBatch) { return this.host.deliver(batch); }  // the callable's method
 *   }
 *
 * Each processor's state and checkpoint live in the host's SQLite and are written in one
 * transaction with the batch that produced them, so a batch is reduced exactly once however
 * often it is delivered: offsets at or below the checkpoint write nothing and run no hooks.
 * Batches for one processor are serialised; a failed batch writes nothing and is redelivered.
 *
 * A processor may own tables (`tables` + `project`): what grows with the history lives in
 * rows written in that same transaction, namespaced per processor, cleared by `reset`. Its
 * stored state is validated on every read, and upgraded (with the rows it moves out of state)
 * in one transaction when the processor recognises an older shape. `waitForCheckpoint`
 * resolves when a commit brings a processor through an offset, so one processor can read
 * another's projection only once it is committed.
 *
 * Never await processor catch-up inside `blockConcurrencyWhile`: deliveries are inbound calls,
 * and a closed input gate would deadlock them.
 *
 * Local feed: events the host's processors (or its owner, through `feed`) append come back
 * from the stream committed, with their offsets; the host reduces them at once for each of its
 * processors bound to that stream, instead of waiting for the stream to deliver them. Only a
 * processor known to have seen the stream up to the first appended offset is fed (its
 * checkpoint, or the non-consumed events an earlier feed showed it, memory only); any gap (a
 * foreign writer, an eviction, a failed feed) leaves it to the delivery, as before. A feed is
 * queued like a batch, with the same anchor rule, and commits the same checkpoint, so the
 * delivery that follows is acknowledged without being reduced again.
 *
 * The host knows nothing of the app around it: it reaches streams through `ProcessorStreams`,
 * which its owner gives it (src/sessions/stream-access.ts binds it to the Stream DOs). State
 * lives in `ProcessorStateStore` (state-store.ts); checkpoint waits in `CheckpointWaiters`.
 */
import type { z } from "zod";
import { DomainError, internal, notFound } from "../errors/domain";
import { issueText } from "../errors/parse";
import { type RpcResult, rpcFail, rpcOk } from "../rpc/result";
import type { DeliveryBatch } from "../streams/delivery";
import type { StreamEvent } from "../streams/messages";
import type { StartAt } from "../streams/system-events";
import { trace } from "../trace";
import { CheckpointWaiters } from "./checkpoint-waiters";
import { type AnyContract, consumedTypes, type StateOf, type TypedEvent } from "./contract";
import { processorOfKey, subscriptionKeyFor } from "./keys";
import {
  type AppendRequest,
  currentRun,
  type ProcessorRun,
  type ProcessorTables,
  type StreamProcessor,
} from "./processor";
import { ProcessorStateStore, type ReducedStep } from "./state-store";

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
  /** Appends as a processor (processor idempotency keys are reserved for processors). */
  appendAsProcessor(streamName: string, events: AppendRequest[]): Promise<StreamEvent[]>;
}

export class ProcessorHost {
  readonly #processors = new Map<string, StreamProcessor<AnyContract>>();
  readonly #queues = new Map<string, Promise<unknown>>();
  readonly #store: ProcessorStateStore;
  readonly #waiters = new CheckpointWaiters();
  /**
   * Local feed bookkeeping, memory only (bounded by the processors and their streams):
   * per processor, the offset through which a feed has shown it the stream past its checkpoint
   * (events it does not consume) and the anchor of its subscription as last delivered; per
   * stream name, its path (batches name both).
   */
  readonly #seen = new Map<string, number>();
  readonly #anchors = new Map<string, number>();
  readonly #paths = new Map<string, string>();

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly streams: ProcessorStreams,
    private readonly identity: HostIdentity,
  ) {
    this.#store = new ProcessorStateStore(ctx.storage);
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
    this.#seen.delete(name);
    this.#anchors.delete(name);
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
  feed(target: { stream: string; streamName: string }, committed: StreamEvent[]): Promise<void> {
    if (committed.length === 0) return Promise.resolve();
    const failed = (name: string) => (error: unknown) =>
      console.warn(
        JSON.stringify({
          msg: "local feed failed; the delivery brings the events again",
          processor: name,
          stream: target.stream,
          offsets: committed.map((e) => e.offset),
          error: String((error as Error)?.message ?? error),
        }),
      );
    this.#paths.set(target.streamName, target.stream);
    const feeds: Promise<unknown>[] = [];
    for (const name of this.#processors.keys()) {
      // Called right after a commit: nothing here may throw into the appender's call.
      const fed = this.#enqueue(name, () =>
        this.#store.boundTo(name) === target.streamName
          ? this.#feedOne(name, target, committed)
          : Promise.resolve(null),
      );
      feeds.push(fed.catch(failed(name)));
    }
    return Promise.all(feeds).then(() => undefined);
  }

  async #feedOne(
    name: string,
    target: { stream: string; streamName: string },
    committed: StreamEvent[],
  ): Promise<{ ackOffset: number }> {
    const checkpoint = this.#store.checkpoint(name);
    const seen = Math.max(checkpoint, this.#seen.get(name) ?? 0);
    const byOffset = new Map(committed.map((e) => [e.offset, e]));
    const run: StreamEvent[] = [];
    for (let next = seen + 1; byOffset.has(next); next++) run.push(byOffset.get(next)!);
    const anchor = this.#anchors.get(name);
    // A gap (someone else appended, or this instance does not know), or events its subscription
    // was (re)configured after: the delivery decides.
    if (run.length === 0 || (anchor !== undefined && anchor >= run[0]!.offset)) {
      trace("host.feed.skipped", () => ({
        stream: target.stream,
        processor: name,
        offsets: committed.map((e) => e.offset),
        seen,
      }));
      return { ackOffset: checkpoint };
    }
    const through = run.at(-1)!.offset;
    const wanted = new Set(consumedTypes(this.#processor(name).contract));
    const events = run
      .filter((e) => e.type !== null && wanted.has(e.type))
      .map(({ idempotencyKey: _key, ...event }) => event);
    trace("host.feed", () => ({
      stream: target.stream,
      processor: name,
      offsets: events.map((e) => e.offset),
      through,
    }));
    let ack = { ackOffset: checkpoint };
    if (events.length > 0) {
      ack = await this.#process(name, {
        ...target,
        subscriptionKey: `${name}@local`,
        anchorOffset: anchor ?? run[0]!.offset - 1,
        events,
        nextOffset: through + 1,
      });
    }
    this.#seen.set(name, Math.max(this.#seen.get(name) ?? 0, through));
    return ack;
  }

  /** Runs `task` for a processor after everything already queued for it (batches, feeds). */
  #enqueue<T>(name: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(name) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => task());
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
      // What the stream delivers tells the anchor of the processor's subscription.
      this.#anchors.set(name, batch.anchorOffset);
      return this.#process(name, batch);
    });
  }

  async #process(
    name: string,
    batch: DeliveryBatch,
    reconcile = false,
  ): Promise<{ ackOffset: number }> {
    const processor = this.#processor(name);
    const contract = processor.contract;
    this.#store.bind(name, batch.streamName);
    this.#paths.set(batch.streamName, batch.stream);
    const { state: stored, checkpoint } = this.snapshot(name);
    const through = Math.max(batch.nextOffset - 1, ...batch.events.map((e) => e.offset));
    trace("host.batch", () => ({
      stream: batch.stream,
      processor: name,
      offsets: batch.events.map((e) => e.offset),
      types: batch.events.map((e) => e.type),
      checkpoint,
    }));
    if (through <= checkpoint && !reconcile) return { ackOffset: checkpoint };

    const wanted = new Set(consumedTypes(contract));
    let state = stored;
    const reduced: ReducedStep[] = [];
    const sideEffects: ReducedStep[] = [];
    for (const raw of batch.events) {
      if (raw.offset <= checkpoint || raw.type === null || !wanted.has(raw.type)) continue;
      const event = this.#parse(name, contract, raw);
      const previousState = state;
      state = processor.reduce({ state, event });
      if (processor.project) reduced.push({ event, previousState, state });
      if (event.offset > batch.anchorOffset) sideEffects.push({ event, previousState, state });
    }

    const blocking: Promise<unknown>[] = [];
    const runFor = (sourceOffset: number): ProcessorRun => ({
      processor: name,
      stream: batch.stream,
      streamName: batch.streamName,
      sourceOffset,
      blocking,
      background: (work) => this.#background(name, batch, sourceOffset, work),
      appendTo: (streamName, events) => this.#append(streamName, events),
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

  #parse(
    name: string,
    contract: AnyContract,
    raw: DeliveryBatch["events"][number],
  ): TypedEvent<AnyContract> {
    if (!Object.hasOwn(contract.events, raw.type!))
      throw new Error(
        `processor ${name}: event ${raw.offset} has type ${raw.type}, not in its contract`,
      );
    const schema = contract.events[raw.type!] as z.ZodType;
    const parsed = schema.safeParse(raw.payload);
    if (!parsed.success) {
      throw new Error(
        `processor ${name}: event ${raw.offset} (${raw.type}) payload invalid ${issueText(parsed.error)}`,
      );
    }
    return { ...raw, type: raw.type!, payload: parsed.data } as TypedEvent<AnyContract>;
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
    const committed = await this.streams.appendAsProcessor(streamName, events);
    trace("host.appended", () => ({ stream: streamName, offsets: committed.map((e) => e.offset) }));
    // Not awaited: the appending processor's own feed queues behind the batch it is in.
    const path = this.#paths.get(streamName);
    if (path !== undefined) void this.feed({ stream: path, streamName }, committed);
    return committed;
  }
}
