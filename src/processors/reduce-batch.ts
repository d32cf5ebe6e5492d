/**
 * The pure half of processing a batch: each event past the checkpoint that the processor
 * consumes is parsed with its contract's schema and reduced, in offset order. The steps it
 * returns feed `project` (every reduced event) and the side-effect hooks (only events past the
 * subscription's anchor). Kept apart from the host, which owns queues, hooks and commits.
 */
import type { z } from "zod";
import { issueText } from "../errors/parse";
import type { DeliveryBatch } from "../streams/delivery";
import { type AnyContract, consumedTypeSet, type StateOf, type TypedEvent } from "./contract";
import type { StreamProcessor } from "./processor";
import type { ReducedStep } from "./state-store";

export interface ReducedBatch {
  state: StateOf<AnyContract>;
  /** Every reduced event with the states around it (for `project`). */
  reduced: ReducedStep[];
  /** The reduced events past the anchor (they fire side effects). */
  sideEffects: ReducedStep[];
}

export function reduceBatch(
  name: string,
  processor: StreamProcessor<AnyContract>,
  stored: StateOf<AnyContract>,
  checkpoint: number,
  batch: DeliveryBatch,
): ReducedBatch {
  const contract = processor.contract;
  const wanted = consumedTypeSet(contract);
  let state = stored;
  const reduced: ReducedStep[] = [];
  const sideEffects: ReducedStep[] = [];
  for (const raw of batch.events) {
    if (raw.offset <= checkpoint || raw.type === null || !wanted.has(raw.type)) continue;
    const event = parseEvent(name, contract, raw);
    const previousState = state;
    state = processor.reduce({ state, event });
    if (processor.project) reduced.push({ event, previousState, state });
    if (event.offset > batch.anchorOffset) sideEffects.push({ event, previousState, state });
  }
  return { state, reduced, sideEffects };
}

function parseEvent(
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
