/**
 * A processor's contract: the event catalog it speaks (type → payload schema), which of those
 * it consumes and emits, and its state schema with the initial state. `consumes` and `emits`
 * are checked against the catalog by the type system where it can, and again when the
 * contract is defined, so a typo fails at start-up instead of silently filtering everything.
 */
import type { z } from "zod";
import { eventTypeSchema } from "../streams/messages";

export type EventCatalog = Record<string, z.ZodType>;

export interface Contract<
  E extends EventCatalog = EventCatalog,
  S extends z.ZodType = z.ZodType,
  C extends keyof E & string = keyof E & string,
  M extends keyof E & string = keyof E & string,
> {
  readonly name: string;
  readonly version: number;
  readonly events: E;
  /** Event types delivered to the processor; `"*"` means every type of the catalog. */
  readonly consumes: readonly C[] | "*";
  readonly emits: readonly M[];
  readonly state: S;
  readonly initialState: z.output<S>;
}

// biome-ignore lint/suspicious/noExplicitAny: the widest contract, for constraints only
export type AnyContract = Contract<EventCatalog, z.ZodType, any, any>;

export type StateOf<K extends AnyContract> = z.output<K["state"]>;
/** The consumed event types (the whole catalog for `"*"`, where C falls back to its constraint). */
export type ConsumedType<K extends AnyContract> =
  // biome-ignore lint/suspicious/noExplicitAny: matching any catalog and state
  K extends Contract<any, any, infer C, any> ? C & string : never;
export type EmittedType<K extends AnyContract> = K["emits"][number] & string;

/** A delivered event of a catalog, its payload parsed with the catalog's schema for its type. */
export type CatalogEvent<E extends EventCatalog, T extends keyof E & string = keyof E & string> = {
  [X in T]: {
    offset: number;
    type: X;
    payload: z.output<E[X]>;
    metadata?: Record<string, unknown>;
    createdAt: string;
  };
}[T];

/** A delivered event whose payload has been parsed with the contract's schema. */
export type TypedEvent<
  K extends AnyContract,
  T extends keyof K["events"] & string = ConsumedType<K>,
> = CatalogEvent<K["events"], T>;

export function defineContract<
  const E extends EventCatalog,
  S extends z.ZodType,
  const C extends keyof E & string,
  const M extends keyof E & string,
>(spec: {
  name: string;
  version: number;
  events: E;
  consumes: readonly C[] | "*";
  emits: readonly M[];
  state: S;
  initialState: z.input<S>;
}): Contract<E, S, C, M> {
  if (!/^[a-z][a-z0-9-]{0,62}$/.test(spec.name)) {
    throw new Error(`contract name ${JSON.stringify(spec.name)} must be lower-case kebab-case`);
  }
  const catalog = Object.keys(spec.events);
  for (const type of catalog) {
    const ok = eventTypeSchema.safeParse(type);
    if (!ok.success)
      throw new Error(`contract ${spec.name}: event type ${type}: ${ok.error.issues[0]?.message}`);
  }
  const unknown = [...(spec.consumes === "*" ? [] : spec.consumes), ...spec.emits].filter(
    (t) => !catalog.includes(t),
  );
  if (unknown.length > 0) {
    throw new Error(`contract ${spec.name}: ${unknown.join(", ")} not in its event catalog`);
  }
  const initial = spec.state.safeParse(spec.initialState);
  if (!initial.success) {
    throw new Error(
      `contract ${spec.name}: initialState does not match the state schema: ${initial.error.message}`,
    );
  }
  return { ...spec, initialState: initial.data as z.output<S> };
}

/** The event types to subscribe with (the stream filters deliveries by them). */
export function consumedTypes(contract: AnyContract): string[] {
  return contract.consumes === "*" ? Object.keys(contract.events) : [...contract.consumes];
}

const consumedSets = new WeakMap<AnyContract, ReadonlySet<string>>();

/** The same as a set, built once per contract (asked on every batch and local feed). */
export function consumedTypeSet(contract: AnyContract): ReadonlySet<string> {
  let set = consumedSets.get(contract);
  if (!set) {
    set = new Set(consumedTypes(contract));
    consumedSets.set(contract, set);
  }
  return set;
}
