/**
 * What an append must pass before it commits, in the order the protocol answers them: the
 * producer (a duplicate is answered, not stored), a closed stream, the body and its reserved
 * events and keys, optimistic concurrency (`expectedOffset`) and Stream-Seq ordering. Reads
 * the log, writes nothing: core.ts commits what this accepts in one transaction.
 */
import { conflict } from "../errors/domain";
import {
  type AppendBody,
  checkClientKeys,
  checkReserved,
  messagesOf,
  type ReservedEvent,
} from "./append-input";
import type { CloseStatus, StreamLog, StreamMeta } from "./log";
import type { EncodedMessage } from "./messages";
import { checkProducer, type DuplicateAppend, type ProducerClaim } from "./producers";
import type { SelfFeed } from "./stream-rpc";

export interface AppendRequest {
  body: AppendBody;
  close?: { status: CloseStatus; reason: string | null };
  producer?: ProducerClaim | null;
  streamSeq?: string | null;
  /** Optimistic concurrency: the offset the first new event must receive. */
  expectedOffset?: number;
  /** Set only by the Stream DO itself: allows events of the reserved `stream/` domain. */
  system?: boolean;
  /** A processor's own append: may use processor idempotency keys (idempotency-keys.ts). */
  asProcessor?: boolean;
  /** Its writer feeds itself this append (feed-leases.ts); handed to `CoreHooks.stored`. */
  selfFeed?: SelfFeed;
  /** Refuse the batch if any of its idempotency keys is stored (no partial repeat). */
  onlyNew?: boolean;
}

/** An append that may commit: its messages, their reserved events, the producer's next state. */
export interface AcceptedAppend {
  kind: "accepted";
  messages: EncodedMessage[];
  system: ReservedEvent[];
  producerState: { epoch: number; seq: number } | null;
  seq: string | null;
}

/**
 * The checks of one append against the live stream `meta`: accepted, answered without a
 * commit (a producer's duplicate, a close of a closed stream), or a thrown DomainError.
 */
export function checkAppend(
  log: StreamLog,
  meta: StreamMeta,
  request: AppendRequest,
): AcceptedAppend | DuplicateAppend | { kind: "already-closed"; tail: number } {
  let producerState: { epoch: number; seq: number } | null = null;
  if (request.producer) {
    const verdict = checkProducer(log.producer(request.producer.id), request.producer, meta);
    if (verdict.kind === "duplicate") return verdict;
    producerState = verdict.next;
  }
  if (meta.closed_at !== null) {
    if (request.body === null && !request.producer)
      return { kind: "already-closed", tail: meta.tail };
    // The tail lets the protocol answer Stream-Closed with the final Stream-Next-Offset.
    throw conflict(
      "stream is closed; no more appends are accepted",
      { tail: meta.tail },
      "stream_closed",
    );
  }
  const messages = messagesOf(request.body, meta);
  const system = checkReserved(messages, request.system === true);
  if (request.asProcessor !== true) checkClientKeys(messages);
  if (request.onlyNew === true) {
    const keys = messages.flatMap((m) => (m.idempotencyKey === null ? [] : [m.idempotencyKey]));
    if (new Set(keys).size < keys.length || (keys.length > 0 && log.offsetsOfKeys(keys).size > 0))
      throw conflict("an event of this batch is already stored (onlyNew)", { onlyNew: true });
  }
  if (request.expectedOffset !== undefined) {
    const next = meta.tail + 1;
    const keys = messages.flatMap((m) => (m.idempotencyKey === null ? [] : [m.idempotencyKey]));
    const fresh =
      keys.length < messages.length || log.offsetsOfKeys(keys).size < new Set(keys).size;
    if (fresh && request.expectedOffset !== next) {
      throw conflict(
        `expectedOffset ${request.expectedOffset} does not match the stream's next offset ${next}`,
        { expectedOffset: request.expectedOffset, nextOffset: next },
        "offset_conflict",
      );
    }
  }
  const seq = request.streamSeq ?? null;
  if (seq !== null && meta.last_stream_seq !== null && seq <= meta.last_stream_seq) {
    throw conflict(
      `Stream-Seq ${JSON.stringify(seq)} is not greater than the last one, ${JSON.stringify(meta.last_stream_seq)}`,
    );
  }
  return { kind: "accepted", messages, system, producerState, seq };
}
