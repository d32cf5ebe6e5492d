/**
 * The processor class users extend. `reduce` is pure and is the only way state changes; the
 * hooks are where side effects happen. A ProcessorHost drives it: events at or below the
 * subscription's anchor are reduced without hooks (state is rebuilt, nothing fires again),
 * later events also get `processEvent`, and every batch ends with `processBatch`, the place to
 * reconcile obligations that sit in state (e.g. a trigger that arrived before the anchor).
 *
 * Side-effect helpers know which event they serve through AsyncLocalStorage, so they also
 * work inside promises started by a hook:
 * - `blockProcessorWhile(p)`: the batch's checkpoint waits for `p`; if it fails the batch
 *   fails and is redelivered.
 * - `runInBackground(p)`: fire and forget; failures are logged with the event's context.
 * - `append(...)`: emits an event to the source stream with the idempotency key
 *   `<processor>/<key>@<offset>`, so replays and retries collapse at the stream.
 *
 * Why ambient (AsyncLocalStorage) rather than passing the helpers to each hook as arguments,
 * as iterate's stream-processor does? Here processors are classes whose hooks hand work to
 * private methods and long-lived promises (a model request streams deltas and appends its
 * outcome seconds later, a tool runs, a compaction appends twice), several calls deep. Each
 * of those appends must carry the offset of the event that caused it (the idempotency anchor)
 * and each blocking promise must join the right batch; with arguments every such method would
 * thread a context object, and one forwarded from the wrong batch would silently key an
 * append to the wrong cause. The run context follows the async call chain by itself, a
 * helper used outside a batch fails loudly (below), and the host stays the only place that
 * creates it. Code outside the processor that needs a helper is handed a closure over it
 * (model-context.ts gets the model processor's `append`). The cost: hooks' signatures do not
 * show the helpers, and node:async_hooks (nodejs_compat) is required.
 */

import { AsyncLocalStorage } from "node:async_hooks";
import type { z } from "zod";
import { issueText } from "../errors/parse";
import { processorKey } from "../streams/idempotency-keys";
import type { StreamEvent } from "../streams/messages";
import type { AnyContract, EmittedType, StateOf, TypedEvent } from "./contract";

export interface ProcessorRun {
  processor: string;
  stream: string;
  streamName: string;
  /** The offset of the event whose side effects are running (idempotency anchor). */
  sourceOffset: number;
  blocking: Promise<unknown>[];
  background(work: Promise<unknown>): void;
  appendTo(streamName: string, events: AppendRequest[]): Promise<StreamEvent[]>;
  /** Whether an event this processor consumes, past `sourceOffset`, is known to be committed. */
  newerCommitted(): boolean;
}

export interface AppendRequest {
  type: string;
  payload: unknown;
  metadata?: Record<string, unknown>;
  idempotencyKey: string;
}

export const currentRun = new AsyncLocalStorage<ProcessorRun>();

export interface EmitInput<K extends AnyContract, T extends EmittedType<K> = EmittedType<K>> {
  type: T;
  payload: z.input<K["events"][T]>;
  metadata?: Record<string, unknown>;
  /** Distinguishes several appends made for the same source event. */
  key: string;
  /**
   * The offset of the event that caused this append, when it is not the event being
   * processed (reconciliation in processBatch acts on causes recorded in state).
   */
  causeOffset?: number;
}

/** What `reduce` sees: the state so far and one consumed event. */
export interface ReduceArgs<K extends AnyContract> {
  state: StateOf<K>;
  event: TypedEvent<K>;
}

export interface EventHookArgs<K extends AnyContract> {
  event: TypedEvent<K>;
  previousState: StateOf<K>;
  state: StateOf<K>;
  stream: string;
}

export interface BatchHookArgs<K extends AnyContract> {
  /** The consumed events of this batch that are past the anchor (side effects allowed). */
  events: TypedEvent<K>[];
  previousState: StateOf<K>;
  state: StateOf<K>;
  anchorOffset: number;
  /** Offset this batch brings the checkpoint to. */
  checkpoint: number;
  stream: string;
}

/**
 * A processor's own SQLite tables, namespaced per processor by the host: `name("messages")`
 * is the table's real name. Rows written through `project` commit in the same transaction
 * as the processor's state and checkpoint.
 */
export interface ProcessorTables {
  name(local: string): string;
  exec<T extends Record<string, SqlStorageValue>>(
    query: string,
    ...bindings: unknown[]
  ): SqlStorageCursor<T>;
}

export interface ProjectArgs<K extends AnyContract> {
  event: TypedEvent<K>;
  previousState: StateOf<K>;
  state: StateOf<K>;
  tables: ProcessorTables;
}

/** A stored state in an older shape, and how to bring it (and its rows) up to date. */
export interface StateUpgrade {
  state: unknown;
  /** Writes the rows the upgrade moves out of state (runs in the upgrade's transaction). */
  write(tables: ProcessorTables): void;
}

export abstract class StreamProcessor<K extends AnyContract> {
  abstract readonly contract: K;

  /**
   * Tables this processor owns: local name → column definitions (`"seq INTEGER PRIMARY KEY,
   * body TEXT NOT NULL"`). The host creates them namespaced per processor, clears them on
   * reset, and applies `project` to them in the transaction that commits state and checkpoint.
   */
  readonly tables?: Readonly<Record<string, string>>;

  /**
   * Writes what grows with the history (a transcript, a table of calls) as rows. Called for
   * every reduced event (before the anchor too: a projection is rebuilt like state), inside
   * the batch's commit transaction, so it is applied exactly once per event.
   */
  project?(args: ProjectArgs<K>): void;

  /**
   * Recognises a stored state of an older shape (called with the raw stored JSON before it is
   * validated); returns null when it is current. The host writes the upgraded state and the
   * rows of `write` in one transaction.
   */
  upgradeState?(stored: unknown): StateUpgrade | null;

  /** Pure: the next state after one event. Never performs side effects. */
  abstract reduce(args: ReduceArgs<K>): StateOf<K>;

  /**
   * Pure: the events this processor owes the stream in `state` (obligations kept in state),
   * each with its `causeOffset`. Declaring it is a promise: the batch hooks append exactly
   * these (same keys and causes) whenever they are owed, and nothing else that depends on the
   * batch. The host may then append them in the same commit as the events that cause them
   * (./fused-appends.ts), and the processor finds them already stored instead of appending
   * them one commit later.
   */
  owed?(state: StateOf<K>): EmitInput<K>[];

  /** Side effects of one event past the anchor. */
  processEvent?(args: EventHookArgs<K>): void | Promise<void>;

  /** Batch-level reconciliation; runs for every delivered batch, even one wholly before the anchor. */
  processBatch?(args: BatchHookArgs<K>): void | Promise<void>;

  protected blockProcessorWhile<T>(work: Promise<T>): Promise<T> {
    run("blockProcessorWhile").blocking.push(work);
    return work;
  }

  protected runInBackground(work: Promise<unknown>): void {
    run("runInBackground").background(work);
  }

  /**
   * Whether an event this processor consumes, newer than the batch being handled, is already
   * committed (to this host's knowledge): it will get a batch of its own, whose state is newer.
   * A hook whose only effect is to mirror the latest state elsewhere may leave that to it.
   */
  protected newerEventCommitted(): boolean {
    return run("newerEventCommitted").newerCommitted();
  }

  /** Appends events this processor emits to the stream it consumes. */
  protected async append(...events: EmitInput<K>[]): Promise<StreamEvent[]> {
    const current = run("append");
    const requests = events.map((event) =>
      emitRequest(this.contract, current.processor, event, current.sourceOffset),
    );
    return current.appendTo(current.streamName, requests);
  }
}

/**
 * An emitted event as appended: its type checked against the contract, its payload parsed,
 * keyed `<processor>/<key>@<cause>` (the cause defaults to the event being processed).
 */
export function emitRequest<K extends AnyContract>(
  contract: K,
  processor: string,
  event: EmitInput<K>,
  sourceOffset: number,
): AppendRequest {
  const type = event.type as string;
  if (
    !(contract.emits as readonly string[]).includes(type) ||
    !Object.hasOwn(contract.events, type)
  ) {
    throw new Error(`processor ${processor} does not emit ${type} (see its contract)`);
  }
  const schema = contract.events[type] as z.ZodType;
  const parsed = schema.safeParse(event.payload);
  if (!parsed.success) {
    throw new Error(`${type} payload invalid ${issueText(parsed.error)}`);
  }
  return {
    type,
    payload: parsed.data,
    ...(event.metadata ? { metadata: event.metadata } : {}),
    idempotencyKey: processorKey(processor, event.key, event.causeOffset ?? sourceOffset),
  };
}

function run(what: string): ProcessorRun {
  const current = currentRun.getStore();
  if (!current) throw new Error(`${what} can only be used while the processor handles a batch`);
  return current;
}
