/**
 * Lets any Durable Object own named processors as plain fields:
 *
 *   class MyObject extends DurableObject<Env> {
 *     host = new ProcessorHost(this.ctx, this.env, { binding: "MY_OBJECTS" });
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
 */
import type { z } from "zod";
import type { Env } from "../env";
import { ApiError } from "../http/errors";
import { type RpcResult, rpcFail, rpcOk, unwrap } from "../rpc/result";
import type { DeliveryBatch } from "../streams/delivery";
import type { StreamEvent } from "../streams/messages";
import { streamStub } from "../streams/stub";
import type { StartAt } from "../streams/system-events";
import { trace } from "../trace";
import { type AnyContract, consumedTypes, type StateOf, type TypedEvent } from "./contract";
import {
  type AppendRequest,
  currentRun,
  type ProcessorRun,
  type ProcessorTables,
  type StreamProcessor,
} from "./processor";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS processor_state (
  processor TEXT PRIMARY KEY,
  state TEXT NOT NULL,
  checkpoint INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS processor_streams (
  processor TEXT PRIMARY KEY,
  stream TEXT NOT NULL
);`;

/** Routes a subscription key to its processor: `<processor>@<binding>/<host name>`. */
export const subscriptionKeyFor = (processor: string, binding: string, hostName: string) =>
  `${processor}@${binding}/${hostName}`;
export const processorOfKey = (key: string) => key.slice(0, Math.max(0, key.indexOf("@")));

export interface HostIdentity {
  /** The binding under which the Stream DO reaches this host (`binding:method` must be on CALLABLE_BINDINGS). */
  binding: string;
  /** The RPC method that forwards to `host.deliver` (default `deliver`). */
  method?: string;
}

/** The SQLite name of a processor's table (processor names are kebab-case, so this is injective). */
export const processorTableName = (processor: string, local: string) =>
  `p_${processor.replaceAll("-", "_")}__${local}`;

interface CheckpointWaiter {
  offset: number;
  resolve(): void;
}

export class ProcessorHost {
  readonly #processors = new Map<string, StreamProcessor<AnyContract>>();
  readonly #queues = new Map<string, Promise<unknown>>();
  readonly #tables = new Map<string, ProcessorTables>();
  readonly #waiters = new Map<string, CheckpointWaiter[]>();

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly env: Env,
    private readonly identity: HostIdentity,
  ) {
    ctx.storage.sql.exec(SCHEMA);
  }

  // biome-ignore lint/suspicious/noExplicitAny: a host holds processors of any contract
  register<P extends StreamProcessor<any>>(name: string, processor: P): P {
    if (!/^[a-z][a-z0-9-]{0,62}$/.test(name))
      throw new Error(`processor name ${JSON.stringify(name)} must be kebab-case`);
    if (this.#processors.has(name)) throw new Error(`processor ${name} is registered twice`);
    for (const [local, columns] of Object.entries(processor.tables ?? {})) {
      if (!/^[a-z][a-z0-9_]{0,62}$/.test(local))
        throw new Error(
          `processor ${name}: table name ${JSON.stringify(local)} must be snake_case`,
        );
      this.ctx.storage.sql.exec(
        `CREATE TABLE IF NOT EXISTS ${processorTableName(name, local)} (${columns})`,
      );
    }
    this.#processors.set(name, processor);
    return processor;
  }

  /** A processor's own tables (to read its projection outside a batch). */
  tables(name: string): ProcessorTables {
    const processor = this.#processor(name);
    let tables = this.#tables.get(name);
    if (!tables) {
      const declared = new Set(Object.keys(processor.tables ?? {}));
      const sql = this.ctx.storage.sql;
      tables = {
        name: (local) => {
          if (!declared.has(local))
            throw new Error(`processor ${name} declares no table ${JSON.stringify(local)}`);
          return processorTableName(name, local);
        },
        exec: (query, ...bindings) => sql.exec(query, ...bindings),
      };
      this.#tables.set(name, tables);
    }
    return tables;
  }

  /** The offset through which a processor's state (and projection) is committed. */
  checkpoint(name: string): number {
    this.#processor(name);
    const row = this.ctx.storage.sql
      .exec<{ checkpoint: number }>(
        "SELECT checkpoint FROM processor_state WHERE processor = ?",
        name,
      )
      .toArray()[0];
    return row?.checkpoint ?? 0;
  }

  /**
   * Resolves once a commit has brought the processor through `offset` (at once if it already
   * has); rejects after `timeoutMs` so a caller never waits in silence.
   */
  waitForCheckpoint(name: string, offset: number, timeoutMs = 30_000): Promise<void> {
    if (this.checkpoint(name) >= offset) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter: CheckpointWaiter = {
        offset,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        const list = this.#waiters.get(name) ?? [];
        this.#waiters.set(
          name,
          list.filter((w) => w !== waiter),
        );
        reject(
          new Error(
            `processor ${name} did not reach offset ${offset} within ${timeoutMs} ms (at ${this.checkpoint(name)})`,
          ),
        );
      }, timeoutMs);
      const list = this.#waiters.get(name) ?? [];
      list.push(waiter);
      this.#waiters.set(name, list);
    });
  }

  #wake(name: string, checkpoint: number): void {
    const list = this.#waiters.get(name);
    if (!list) return;
    const due = list.filter((w) => w.offset <= checkpoint);
    if (due.length === 0) return;
    this.#waiters.set(
      name,
      list.filter((w) => w.offset > checkpoint),
    );
    for (const waiter of due) waiter.resolve();
  }

  #processor(name: string): StreamProcessor<AnyContract> {
    const processor = this.#processors.get(name);
    if (!processor)
      throw new ApiError(
        404,
        "not_found",
        `no processor named ${JSON.stringify(name)} on this host`,
      );
    return processor;
  }

  /** The processor's stored state (validated with its schema, defaults applied) and checkpoint. */
  snapshot<K extends AnyContract>(name: string): { state: StateOf<K>; checkpoint: number } {
    const processor = this.#processor(name);
    const row = this.ctx.storage.sql
      .exec<{ state: string; checkpoint: number }>(
        "SELECT state, checkpoint FROM processor_state WHERE processor = ?",
        name,
      )
      .toArray()[0];
    if (!row)
      return {
        state: structuredClone(processor.contract.initialState) as StateOf<K>,
        checkpoint: 0,
      };
    let stored: unknown = JSON.parse(row.state);
    const upgrade = processor.upgradeState?.(stored) ?? null;
    if (upgrade) {
      const tables = this.tables(name);
      this.ctx.storage.transactionSync(() => {
        upgrade.write(tables);
        this.ctx.storage.sql.exec(
          "UPDATE processor_state SET state = ?, updated_at = ? WHERE processor = ?",
          JSON.stringify(upgrade.state),
          Date.now(),
          name,
        );
      });
      stored = upgrade.state;
    }
    const parsed = processor.contract.state.safeParse(stored);
    if (!parsed.success) {
      throw new Error(
        `stored state of processor ${name} does not match its schema: ${parsed.error.message}`,
      );
    }
    return { state: parsed.data as StateOf<K>, checkpoint: row.checkpoint };
  }

  /** Forgets a processor's state, checkpoint and table rows (to rebuild it from its stream). */
  reset(name: string): void {
    const processor = this.#processor(name);
    this.ctx.storage.transactionSync(() => {
      for (const local of Object.keys(processor.tables ?? {}))
        this.ctx.storage.sql.exec(`DELETE FROM ${processorTableName(name, local)}`);
      this.ctx.storage.sql.exec("DELETE FROM processor_state WHERE processor = ?", name);
      this.ctx.storage.sql.exec("DELETE FROM processor_streams WHERE processor = ?", name);
    });
  }

  state<K extends AnyContract>(name: string): StateOf<K> {
    return this.snapshot<K>(name).state;
  }

  /**
   * Binds a processor to the one stream it consumes (offsets, and so checkpoints, are per
   * stream). A delivery from any other stream is refused; register another processor to
   * consume a second stream.
   */
  #bind(name: string, streamName: string): void {
    const row = this.ctx.storage.sql
      .exec<{ stream: string }>("SELECT stream FROM processor_streams WHERE processor = ?", name)
      .toArray()[0];
    if (row && row.stream !== streamName) {
      throw new ApiError(
        409,
        "conflict",
        `processor ${name} consumes ${row.stream}, not ${streamName}`,
      );
    }
    if (!row) {
      this.ctx.storage.sql.exec(
        "INSERT INTO processor_streams (processor, stream) VALUES (?, ?)",
        name,
        streamName,
      );
    }
  }

  /** Subscribes a registered processor to a stream (idempotent for the same settings). */
  async subscribe(
    name: string,
    options: { streamName: string; hostName: string; startAt?: StartAt },
  ) {
    const processor = this.#processor(name);
    this.#bind(name, options.streamName);
    const stub = this.env.STREAMS.get(this.env.STREAMS.idFromName(options.streamName));
    return unwrap(
      stub.configureSubscription({
        key: subscriptionKeyFor(name, this.identity.binding, options.hostName),
        callable: {
          kind: "durable-object",
          binding: this.identity.binding,
          name: options.hostName,
          method: this.identity.method ?? "deliver",
        },
        eventTypes: consumedTypes(processor.contract),
        startAt: options.startAt ?? "beginning",
      }),
    );
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
    const previous = this.#queues.get(name) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.#process(name, batch, true));
    this.#queues.set(name, next);
    return next.then(() => undefined);
  }

  /**
   * Entry point for deliveries: routes the batch to the processor named by its subscription
   * key. A failed batch answers `{ ok: false, error }` (the stream retries it and logs the
   * failure once) rather than throwing an exception workerd would log as uncaught here too.
   */
  async deliver(batch: DeliveryBatch): Promise<RpcResult<{ ackOffset: number }>> {
    try {
      return rpcOk(await this.deliverTo(processorOfKey(batch.subscriptionKey), batch));
    } catch (error) {
      const known = ApiError.from(error);
      return rpcFail(
        known instanceof ApiError
          ? known
          : new ApiError(500, "internal", String((error as Error)?.message ?? error)),
      );
    }
  }

  /** Processes a batch for one processor, after any batch already running for it. */
  deliverTo(name: string, batch: DeliveryBatch): Promise<{ ackOffset: number }> {
    this.#processor(name);
    const previous = this.#queues.get(name) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.#process(name, batch));
    this.#queues.set(name, next);
    return next;
  }

  async #process(
    name: string,
    batch: DeliveryBatch,
    reconcile = false,
  ): Promise<{ ackOffset: number }> {
    const processor = this.#processor(name);
    const contract = processor.contract;
    this.#bind(name, batch.streamName);
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
    const reduced: { event: TypedEvent<AnyContract>; previousState: unknown; state: unknown }[] =
      [];
    const sideEffects: {
      event: TypedEvent<AnyContract>;
      previousState: unknown;
      state: unknown;
    }[] = [];
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
        processor.processEvent!({ ...effect, stream: batch.stream } as never),
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
        } as never),
      );
    }
    // Blocking work may add more blocking work; wait until none is left.
    for (let settled = 0; settled < blocking.length; ) {
      const upTo = blocking.length;
      await Promise.all(blocking.slice(settled, upTo));
      settled = upTo;
    }
    if (through > checkpoint) this.#commit(name, processor, state, through, reduced);
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
      const issue = parsed.error.issues[0];
      throw new Error(
        `processor ${name}: event ${raw.offset} (${raw.type}) payload invalid at ${issue?.path.join(".") || "(root)"}: ${issue?.message}`,
      );
    }
    return { ...raw, type: raw.type!, payload: parsed.data } as TypedEvent<AnyContract>;
  }

  /**
   * Projection rows, state and checkpoint in one transaction; a state that fails its schema
   * (or a projection that throws) fails the batch and writes nothing.
   */
  #commit(
    name: string,
    processor: StreamProcessor<AnyContract>,
    state: unknown,
    checkpoint: number,
    reduced: { event: TypedEvent<AnyContract>; previousState: unknown; state: unknown }[],
  ): void {
    const valid = processor.contract.state.safeParse(state);
    if (!valid.success)
      throw new Error(
        `processor ${name}: reduced state does not match its schema: ${valid.error.message}`,
      );
    const tables = processor.project ? this.tables(name) : null;
    this.ctx.storage.transactionSync(() => {
      for (const step of reduced)
        processor.project!({
          event: step.event,
          previousState: step.previousState as never,
          state: step.state as never,
          tables: tables!,
        });
      this.ctx.storage.sql.exec(
        `INSERT INTO processor_state (processor, state, checkpoint, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (processor) DO UPDATE SET state = excluded.state, checkpoint = excluded.checkpoint,
           updated_at = excluded.updated_at WHERE excluded.checkpoint > processor_state.checkpoint`,
        name,
        JSON.stringify(valid.data),
        checkpoint,
        Date.now(),
      );
    });
    this.#wake(name, checkpoint);
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
    const stub = streamStub(this.env, streamName);
    trace("host.append", () => ({
      stream: streamName,
      processor: currentRun.getStore()?.processor,
      types: events.map((e) => e.type),
    }));
    // Processor keys (`<processor>/<key>@<offset>`) are reserved for processors' own appends.
    const committed = await unwrap(stub.appendBatch(events, { asProcessor: true }));
    trace("host.appended", () => ({ stream: streamName, offsets: committed.map((e) => e.offset) }));
    return committed;
  }
}
