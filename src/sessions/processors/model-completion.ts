/**
 * How a model attempt's outcome is appended. The reply's last deltas go out in the same append
 * as its `request-completed` (one commit, not two), through the attempt's `append`, which also
 * carries the attempt's `request-started` if no earlier append did. A reply over the inline
 * limit goes to chunk events first (between the deltas and the completion that names them).
 *
 * An outcome the stream refuses (too large, invalid) must not leave the request retrying in
 * silence: it is answered as a non-retryable ModelError for the caller to record as the
 * request's failure. Other errors propagate (the request then runs again, as after a crash).
 */
import { DomainError, isFault } from "../../errors/domain";
import { HTTP_STATUS } from "../../errors/http";
import type { EmitInput } from "../../processors/processor";
import type { StreamEvent } from "../../streams/messages";
import { CHUNK_EVENT, type ContentRef, needsChunks, storeContent } from "../content";
import type { modelContract } from "../contracts";
import { type CollectedResponse, ModelError } from "../models/collect";

type ModelEmit = EmitInput<typeof modelContract>;

export interface Completing {
  attempt: number;
  /** The reply's last deltas, not yet appended. */
  last: ModelEmit[];
  append: (...events: ModelEmit[]) => Promise<StreamEvent[]>;
}

/** Appends the outcome; null when stored, else why the stream refused it. */
export async function appendCompletion(
  requestId: string,
  cause: number,
  result: CollectedResponse,
  completing: Completing,
): Promise<ModelError | null> {
  try {
    await append(requestId, cause, result, completing);
    return null;
  } catch (error) {
    if (!(error instanceof DomainError) || isFault(error.code)) throw error;
    // The event's `status` reads as HTTP statuses do (a provider's 429, the stream's 413).
    return new ModelError(`the reply could not be stored: ${error.message}`, {
      status: HTTP_STATUS[error.code],
      retryable: false,
    });
  }
}

async function append(
  requestId: string,
  cause: number,
  result: CollectedResponse,
  { attempt, last, append }: Completing,
): Promise<void> {
  let text = result.text;
  let textRef: ContentRef | undefined;
  let lead = last;
  if (needsChunks(text)) {
    if (lead.length > 0) await append(...lead);
    lead = [];
    textRef = await storeContent(`${requestId}-reply-${attempt}`, text, async (chunks) =>
      (
        await append(
          ...chunks.map((chunk) => ({
            type: CHUNK_EVENT,
            payload: chunk,
            key: `reply-${attempt}-chunk-${chunk.index}`,
            causeOffset: cause,
          })),
        )
      ).map((e) => e.offset),
    );
    text = "";
  }
  await append(...lead, {
    type: "model/request-completed",
    payload: {
      requestId,
      text,
      ...(textRef ? { textRef } : {}),
      toolCalls: result.toolCalls,
      finishReason: result.finishReason,
    },
    key: "completed",
    causeOffset: cause,
  });
}
