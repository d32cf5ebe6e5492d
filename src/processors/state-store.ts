/**
 * Where a host keeps its processors' durable state, in its own SQLite: each processor's
 * reduced state and checkpoint (one row), the one stream it is bound to, and its own tables.
 * State is validated on every read (and upgraded, with the rows it moves out of state, in one
 * transaction when the processor recognises an older shape); a batch's projection rows, state
 * and checkpoint commit in one transaction, so a batch is reduced exactly once.
 */
import { conflict, corruptRecord } from "../errors/domain";
import { issueText } from "../errors/parse";
import type { AnyContract, StateOf, TypedEvent } from "./contract";
import { processorTableName } from "./keys";
import type { ProcessorTables, StreamProcessor } from "./processor";

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
   * Per processor, the stored state text this store last validated and found in the schema's
   * output shape (its own commit, or a read the schema left unchanged): reading back that
   * exact text skips re-validation, since the schema would return it as it is. Every batch
   * and RPC reads the state, so this is one JSON.parse instead of a full schema walk per read.
   * Any other text (written behind its back, upgraded, reset) is validated as before.
   */
  readonly #validated = new Map<string, string>();
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
    const row = this.storage.sql
      .exec<{ checkpoint: number }>(
        "SELECT checkpoint FROM processor_state WHERE processor = ?",
        name,
      )
      .toArray()[0];
    return row?.checkpoint ?? 0;
  }

  /** The processor's stored state (validated with its schema, defaults applied) and checkpoint. */
  snapshot<K extends AnyContract>(
    name: string,
    processor: StreamProcessor<AnyContract>,
  ): { state: StateOf<K>; checkpoint: number } {
    const row = this.storage.sql
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
    if (this.#validated.get(name) === row.state)
      return { state: JSON.parse(row.state) as StateOf<K>, checkpoint: row.checkpoint };
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
    const parsed = processor.contract.state.safeParse(stored);
    if (!parsed.success) {
      throw corruptRecord(
        `stored state of processor ${name}`,
        `it does not match its schema ${issueText(parsed.error)}`,
      );
    }
    // Only a text already in the schema's output shape (defaults filled) can skip the schema.
    if (!upgrade && JSON.stringify(parsed.data) === row.state) this.#validated.set(name, row.state);
    return { state: parsed.data as StateOf<K>, checkpoint: row.checkpoint };
  }

  /** Forgets a processor's state, checkpoint and table rows (to rebuild it from its stream). */
  reset(name: string, processor: StreamProcessor<AnyContract>): void {
    this.#validated.delete(name);
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
   * (or a projection that throws) fails the batch and writes nothing.
   */
  commit(
    name: string,
    processor: StreamProcessor<AnyContract>,
    state: unknown,
    checkpoint: number,
    reduced: ReducedStep[],
  ): void {
    const valid = processor.contract.state.safeParse(state);
    if (!valid.success)
      throw new Error(
        `processor ${name}: reduced state does not match its schema ${issueText(valid.error)}`,
      );
    const project = processor.project?.bind(processor);
    const tables = project ? this.tables(name, processor) : null;
    const text = JSON.stringify(valid.data);
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
    this.#validated.set(name, text);
  }
}
