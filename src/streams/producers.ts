/**
 * Idempotent producers (PROTOCOL.md §5.2.1): a producer names itself, an epoch and a
 * sequence number per append, so that a retried append is recognised as a duplicate and a
 * gap or a stale (fenced) epoch is refused. This module only decides; the stream core
 * stores the accepted state in the same transaction as the append.
 */
import { conflict, type DomainError, forbidden, invalidInput } from "../errors/domain";
import type { StreamMeta } from "./log";

export interface ProducerClaim {
  id: string;
  epoch: number;
  seq: number;
}

/** The stored state of one producer (log.ts). */
export interface ProducerState {
  epoch: number;
  lastSeq: number;
}

/** An append that repeats one already stored: answered as it was, nothing is written. */
export interface DuplicateAppend {
  kind: "duplicate";
  tail: number;
  closed: boolean;
  producer: { epoch: number; seq: number };
}

export type ProducerVerdict =
  | { kind: "accept"; next: { epoch: number; seq: number } }
  | DuplicateAppend;

/** The idempotent-producer state machine of PROTOCOL.md §5.2.1 (nothing is written here). */
export function checkProducer(
  state: ProducerState | null,
  claim: ProducerClaim,
  meta: StreamMeta,
): ProducerVerdict {
  if (state === null) {
    if (claim.seq !== 0) throw producerGap(0, claim.seq);
    return { kind: "accept", next: { epoch: claim.epoch, seq: 0 } };
  }
  if (claim.epoch < state.epoch) {
    // The current epoch lets the protocol answer with Producer-Epoch.
    throw forbidden(`producer epoch ${claim.epoch} is stale; current epoch is ${state.epoch}`, {
      producerEpoch: state.epoch,
    });
  }
  if (claim.epoch > state.epoch) {
    if (claim.seq !== 0)
      throw invalidInput(`a new producer epoch must start at Producer-Seq 0, got ${claim.seq}`);
    return { kind: "accept", next: { epoch: claim.epoch, seq: 0 } };
  }
  if (claim.seq <= state.lastSeq) {
    return {
      kind: "duplicate",
      tail: meta.tail,
      closed: meta.closed_at !== null,
      producer: { epoch: state.epoch, seq: state.lastSeq },
    };
  }
  if (claim.seq > state.lastSeq + 1) throw producerGap(state.lastSeq + 1, claim.seq);
  return { kind: "accept", next: { epoch: claim.epoch, seq: claim.seq } };
}

function producerGap(expected: number, received: number): DomainError {
  return conflict(`producer sequence gap: expected ${expected}, received ${received}`, {
    expectedSeq: expected,
    receivedSeq: received,
  });
}
