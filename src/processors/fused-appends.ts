/**
 * Fused appends: what a processor owes because of an append, appended in the same commit.
 *
 * A processor that declares `owed(state)` (processor.ts) appends exactly those events from its
 * batch hooks. So when its host appends events it consumes — a message, a model's reply — and
 * the processor is idle and has seen the stream up to the tail, the host can reduce those
 * events ahead (at the offsets they will get), ask what the processor then owes, and send both
 * in one append. That append is guarded: `expectedOffset` (it lands exactly at the predicted
 * offsets) and `onlyNew` (no event of it was stored before), so the prediction either holds or
 * nothing is written and the host appends the events alone, as without fusing. When the
 * processor later reduces the committed batch, the obligations are already in it and it owes
 * nothing more: one commit instead of two, and the same events, keys and order as before.
 *
 * This module is the pure half: predict, reduce, ask. The host decides when (host.ts).
 */
import type { DeliveryBatch } from "../streams/delivery";
import type { EventInput, JsonValue } from "../streams/messages";
import { type AnyContract, consumedTypeSet, type StateOf } from "./contract";
import { type AppendRequest, emitRequest, type StreamProcessor } from "./processor";
import { reduceBatch } from "./reduce-batch";

/** The batch `events` would be if committed right after `tail`. */
export function predictedBatch(
  target: { stream: string; streamName: string },
  events: EventInput[],
  tail: number,
  anchorOffset: number,
  at: string,
): DeliveryBatch {
  return {
    ...target,
    subscriptionKey: "fused",
    anchorOffset,
    nextOffset: tail + events.length + 1,
    events: events.map((event, i) => ({
      offset: tail + 1 + i,
      type: event.type,
      payload: event.payload as JsonValue,
      ...(event.metadata ? { metadata: event.metadata as Record<string, JsonValue> } : {}),
      createdAt: at,
    })),
  };
}

/**
 * What `processor` (named `name`, in `state` at `checkpoint`) owes once it has reduced
 * `batch`, as append requests; empty when it owes nothing or does not declare `owed`. Throws
 * when the batch cannot be reduced (the caller then does not fuse).
 */
export function owedAfter(
  name: string,
  processor: StreamProcessor<AnyContract>,
  state: StateOf<AnyContract>,
  checkpoint: number,
  batch: DeliveryBatch,
): AppendRequest[] {
  if (!processor.owed) return [];
  const consumes = consumedTypeSet(processor.contract);
  if (!batch.events.some((e) => e.type !== null && consumes.has(e.type))) return [];
  const { state: next } = reduceBatch(name, processor, state, checkpoint, batch);
  return processor.owed(next).map((event) => {
    if (event.causeOffset === undefined)
      throw new Error(`processor ${name} owes ${String(event.type)} without a causeOffset`);
    return emitRequest(processor.contract, name, event, event.causeOffset);
  });
}
