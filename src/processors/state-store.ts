/**
 * Where a host keeps its processors' durable state, in its own SQLite: each processor's
 * reduced state and checkpoint (one row), the one stream it is bound to, and its own tables.
 * State is validated on every read from storage (and upgraded, with the rows it moves out of
 * state, in one transaction when the processor recognises an older shape); a batch's
 * projection rows, state and checkpoint commit in one transaction, so a batch is reduced
 * exactly once.
 *
 * Only this store writes `processor_state`, so it keeps each row it has read or written in
 * memory, write-through: every local feed asks for a checkpoint and every batch and RPC for
 * the state, and without the copy each was a SQL statement (and a JSON parse) per processor
 * per append. The copy holds the validated state's text, is set only after the transaction
 * that wrote it has committed (a failed commit leaves it at the old value), and is empty in a
 * fresh instance (after an eviction), which reads — and validates — the row again. `commit`
 * must not run inside an outer transaction that could still roll back.
 */
import { conflict, corruptRecord } from "../errors/domain";
import { issueText } from "../errors/parse";
import type { AnyContract, StateOf, TypedEvent } from "./contract";
import { processorTableName } from "./keys";
import type { ProcessorTables, StreamProcessor } from "./processor";
import { type StateParts, validateState } from "./state-validation";

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

/** One reduced event of a batch, with the states around it (for `project`). */
export interface ReducedStep {
  event: TypedEvent<AnyContract>;
  previousState: StateOf<AnyContract>;
  state: StateOf<AnyContract>;
}

export class ProcessorStateStore {
  readonly #tables = new Map<string, ProcessorTables>();
  /**
   * Per processor, its stored row as this instance last read or committed it: the checkpoint
   * (0: no row), and the state as the text of its validated value (null: no row, the initial
   * state; undefined: not read yet, only the checkpoint is known), with its top-level parts
   * (./state-validation.ts: a commit validates only the parts that changed).
   */
  readonly #rows = new Map<
    string,
    { checkpoint: number; state?: string | null; parts?: StateParts | null }
  >();
  /** Processors whose stream binding is stored (checked once per instance, not per batch). */
  readonly #bound = new Map<string, string>();

  constructor(private readonly storage: DurableObjectStorage) {
    storage.sql.exec(SCHEMA);
  }

  /** Creates a processor's declared tables (idempotent). */
  createTables(name: string, processor: StreamProcessor<AnyContract>): void {
    for (const [local, columns] of Object.entries(processor.tables ?? {})) {
      if (!/^[a-z][a-z0-9_]{0,62}$/.test(local))
        throw new Error(
          `processor ${name}: table name ${JSON.stringify(local)} must be snake_case`,
        );
      this.storage.sql.exec(
        `CREATE TABLE IF NOT EXISTS ${processorTableName(name, local)} (${columns})`,
      );
    }
  }

  /** A processor's own tables (to read its projection outside a batch). */
  tables(name: string, processor: StreamProcessor<AnyContract>): ProcessorTables {
    let tables = this.#tables.get(name);
    if (!tables) {
      const declared = new Set(Object.keys(processor.tables ?? {}));
      const sql = this.storage.sql;
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
    const known = this.#rows.get(name);
    if (known) return known.checkpoint;
    const row = this.storage.sql
      .exec<{ checkpoint: number }>(
        "SELECT checkpoint FROM processor_state WHERE processor = ?",
        name,
      )
      .toArray()[0];
    const checkpoint = row?.checkpoint ?? 0;
    if (!Number.isSafeInteger(checkpoint) || checkpoint < 0)
      throw corruptRecord(`stored checkpoint of processor ${name}`, `${checkpoint} is no offset`);
    this.#rows.set(name, row ? { checkpoint } : { checkpoint, state: null });
    return checkpoint;
  }

  /** The processor's stored state (validated with its schema, defaults applied) and checkpoint. */
  snapshot<K extends AnyContract>(
    name: string,
    processor: StreamProcessor<AnyContract>,
  ): { state: StateOf<K>; checkpoint: number } {
    const known = this.#rows.get(name);
    if (known?.state !== undefined) return this.#copy<K>(processor, known.state, known.checkpoint);
    const row = this.storage.sql
      .exec<{ state: string; checkpoint: number }>(
        "SELECT state, checkpoint FROM processor_state WHERE processor = ?",
        name,
      )
      .toArray()[0];
    if (!row) {
      this.#rows.set(name, { checkpoint: 0, state: null });
      return this.#copy<K>(processor, null, 0);
    }
    if (!Number.isSafeInteger(row.checkpoint) || row.checkpoint < 0)
      throw corruptRecord(
        `stored checkpoint of processor ${name}`,
        `${row.checkpoint} is no offset`,
      );
    let stored: unknown;
    try {
      stored = JSON.parse(row.state);
    } catch (error) {
      throw corruptRecord(`stored state of processor ${name}`, (error as Error).message);
    }
    const upgrade = processor.upgradeState?.(stored) ?? null;
    if (upgrade) {
      const tables = this.tables(name, processor);
      this.storage.transactionSync(() => {
        upgrade.write(tables);
        this.storage.sql.exec(
          "UPDATE processor_state SET state = ?, updated_at = ? WHERE processor = ?",
          JSON.stringify(upgrade.state),
          Date.now(),
          name,
        );
      });
      stored = upgrade.state;
    }
    const valid = validateState(processor.contract.state, stored, null);
    if (!valid.ok) {
      throw corruptRecord(
        `stored state of processor ${name}`,
        `it does not match its schema ${issueText(valid.error)}`,
      );
    }
    // The validated value (defaults applied) is what every later read gets, as a copy.
    const { text, parts } = valid;
    this.#rows.set(name, { checkpoint: row.checkpoint, state: text, parts });
    return { state: JSON.parse(text) as StateOf<K>, checkpoint: row.checkpoint };
  }

  /** A fresh copy of a known state (callers may keep or change what they are given). */
  #copy<K extends AnyContract>(
    processor: StreamProcessor<AnyContract>,
    text: string | null,
    checkpoint: number,
  ): { state: StateOf<K>; checkpoint: number } {
    const state =
      text === null ? structuredClone(processor.contract.initialState) : JSON.parse(text);
    return { state: state as StateOf<K>, checkpoint };
  }

  /** Forgets a processor's state, checkpoint and table rows (to rebuild it from its stream). */
  reset(name: string, processor: StreamProcessor<AnyContract>): void {
    this.#rows.delete(name);
    this.#bound.delete(name);
    this.storage.transactionSync(() => {
      for (const local of Object.keys(processor.tables ?? {}))
        this.storage.sql.exec(`DELETE FROM ${processorTableName(name, local)}`);
      this.storage.sql.exec("DELETE FROM processor_state WHERE processor = ?", name);
      this.storage.sql.exec("DELETE FROM processor_streams WHERE processor = ?", name);
    });
  }

  /**
   * Binds a processor to the one stream it consumes (offsets, and so checkpoints, are per
   * stream). A delivery from any other stream is refused; register another processor to
   * consume a second stream.
   */
  bind(name: string, streamName: string): void {
    // Bound once, a processor stays bound until `reset` (every batch passes here).
    if (this.#bound.get(name) === streamName) return;
    const row = this.storage.sql
      .exec<{ stream: string }>("SELECT stream FROM processor_streams WHERE processor = ?", name)
      .toArray()[0];
    if (row && row.stream !== streamName) {
      throw conflict(`processor ${name} consumes ${row.stream}, not ${streamName}`);
    }
    if (!row) {
      this.storage.sql.exec(
        "INSERT INTO processor_streams (processor, stream) VALUES (?, ?)",
        name,
        streamName,
      );
    }
    this.#bound.set(name, streamName);
  }

  /** The stream a processor is bound to, or null while it is bound to none. */
  boundTo(name: string): string | null {
    const known = this.#bound.get(name);
    if (known !== undefined) return known;
    const row = this.storage.sql
      .exec<{ stream: string }>("SELECT stream FROM processor_streams WHERE processor = ?", name)
      .toArray()[0];
    if (row) this.#bound.set(name, row.stream);
    return row?.stream ?? null;
  }

  /**
   * Projection rows, state and checkpoint in one transaction; a state that fails its schema
   * (or a projection that throws) fails the batch and writes nothing. Parts of the state that
   * are the last validated ones again are not validated again (./state-validation.ts).
   */
  commit(
    name: string,
    processor: StreamProcessor<AnyContract>,
    state: unknown,
    checkpoint: number,
    reduced: ReducedStep[],
  ): void {
    const last = this.#rows.get(name);
    const valid = validateState(
      processor.contract.state,
      state,
      typeof last?.state === "string" ? (last.parts ?? null) : null,
    );
    if (!valid.ok)
      throw new Error(
        `processor ${name}: reduced state does not match its schema ${issueText(valid.error)}`,
      );
    const { text, parts } = valid;
    const project = processor.project?.bind(processor);
    const tables = project ? this.tables(name, processor) : null;
    this.storage.transactionSync(() => {
      if (project && tables) for (const step of reduced) project({ ...step, tables });
      this.storage.sql.exec(
        `INSERT INTO processor_state (processor, state, checkpoint, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (processor) DO UPDATE SET state = excluded.state, checkpoint = excluded.checkpoint,
           updated_at = excluded.updated_at WHERE excluded.checkpoint > processor_state.checkpoint`,
        name,
        text,
        checkpoint,
        Date.now(),
      );
    });
    // Committed. The row changed only past its checkpoint (the statement's condition); when
    // this instance did not know the row (or a reset forgot it meanwhile), the next read
    // finds out what it holds.
    const known = this.#rows.get(name);
    if (!known) return;
    if (checkpoint > known.checkpoint) this.#rows.set(name, { checkpoint, state: text, parts });
  }
}
