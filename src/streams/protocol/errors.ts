/**
 * A DomainError as the Durable Streams protocol answers it: the shared JSON error with its
 * status (src/errors/http.ts) plus the protocol's own headers, built here from the error's
 * details, since the stream core knows no headers: a closed stream answers `Stream-Closed`
 * and its final `Stream-Next-Offset`, a stale producer epoch the current `Producer-Epoch`,
 * a sequence gap `Producer-Expected-Seq` and `Producer-Received-Seq` (PROTOCOL.md).
 */
import type { DomainError } from "../../errors/domain";
import { errorResponse } from "../../errors/http";
import { encodeOffset } from "../offsets";
import { H } from "./headers";

const isCount = (value: unknown): value is number => Number.isSafeInteger(value);

export function protocolErrorHeaders(error: DomainError): Headers {
  const headers = new Headers();
  const details = (error.details ?? {}) as Record<string, unknown>;
  if (error.code === "stream_closed" && isCount(details.tail)) {
    headers.set(H.closed, "true");
    headers.set(H.nextOffset, encodeOffset(details.tail));
  }
  if (isCount(details.producerEpoch)) headers.set(H.producerEpoch, String(details.producerEpoch));
  if (isCount(details.expectedSeq) && isCount(details.receivedSeq)) {
    headers.set(H.producerExpectedSeq, String(details.expectedSeq));
    headers.set(H.producerReceivedSeq, String(details.receivedSeq));
  }
  return headers;
}

export const protocolErrorResponse = (error: DomainError): Response =>
  errorResponse(error, protocolErrorHeaders(error));
