/**
 * Appending a user's message to the session stream: the content is checked against the
 * per-message limit, large content goes first as chunk events (bounded appends, keyed by the
 * message so a retry collapses at the stream), then `session/input-added` carries the content
 * or a reference to its chunks. With an idempotency key the whole append is repeatable.
 */
import { ulid } from "ulidx";
import { invalidInput, tooLarge } from "../errors/domain";
import type { StreamEvent } from "../streams/messages";
import {
  CHUNK_EVENT,
  MAX_INPUT_CONTENT_BYTES,
  needsChunks,
  storeContent,
  utf8Bytes,
} from "./content";
import { type SessionEventPayload, sessionEvents } from "./events";
import type { StreamAccess } from "./stream-access";

export async function appendInput(
  stream: Pick<StreamAccess, "appendBatch">,
  content: string,
  idempotencyKey?: string,
): Promise<{ event: StreamEvent; payload: SessionEventPayload<"session/input-added"> }> {
  const bytes = utf8Bytes(content);
  if (content === "" || bytes > MAX_INPUT_CONTENT_BYTES)
    throw content === ""
      ? invalidInput("a message needs content", undefined, "validation_failed")
      : tooLarge(
          `content of ${bytes} bytes exceeds the ${MAX_INPUT_CONTENT_BYTES}-byte limit of a message`,
        );
  const messageId = idempotencyKey ? `msg-${idempotencyKey}` : `msg-${ulid()}`;
  // Large content goes first, as chunk events (bounded appends, keyed by the message).
  const keyBase = idempotencyKey ? `input:${idempotencyKey}` : `input-${messageId}`;
  const contentRef = needsChunks(content)
    ? await storeContent(messageId, content, async (chunks) =>
        (
          await stream.appendBatch(
            chunks.map((chunk) => ({
              type: CHUNK_EVENT,
              payload: chunk,
              idempotencyKey: `${keyBase}/chunk-${chunk.index}`,
            })),
          )
        ).map((e) => e.offset),
      )
    : undefined;
  const [event] = await stream.appendBatch([
    {
      type: "session/input-added",
      payload: contentRef ? { messageId, content: "", contentRef } : { messageId, content },
      ...(idempotencyKey ? { idempotencyKey: `input:${idempotencyKey}` } : {}),
    },
  ]);
  const stored = event!;
  return { event: stored, payload: sessionEvents["session/input-added"].parse(stored.payload) };
}
