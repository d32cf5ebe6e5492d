/**
 * Server-Sent Events in tests, parsed by eventsource-parser (never by hand): `sseReader`
 * hands out one event at a time, `parseSse` collects events until `enough` says so. Both
 * cancel the body when done, so no response is left open (workerd reports those).
 */
import { createParser, type EventSourceMessage } from "eventsource-parser";

export type { EventSourceMessage };

/**
 * Incremental reader over a response body: `next()` resolves with the next event, or null
 * when the stream ends. Comments (keep-alives) are skipped; `event` is undefined for the
 * default event type, as eventsource-parser reports it.
 */
export function sseReader(res: Response) {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const queue: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => queue.push(event) });
  let done = false;
  return {
    async next(): Promise<EventSourceMessage | null> {
      while (queue.length === 0) {
        if (done) return null;
        const chunk = await reader.read();
        if (chunk.done) done = true;
        else parser.feed(decoder.decode(chunk.value, { stream: true }));
      }
      return queue.shift()!;
    },
    cancel: () => reader.cancel().catch(() => undefined),
  };
}

export type SseReader = ReturnType<typeof sseReader>;

/** Reads events until `enough` holds for those seen (or the stream ends), then cancels. */
export async function parseSse(
  res: Response,
  enough: (frames: EventSourceMessage[]) => boolean,
  timeoutMs = 10_000,
): Promise<EventSourceMessage[]> {
  const frames: EventSourceMessage[] = [];
  const sse = sseReader(res);
  const deadline = Date.now() + timeoutMs;
  try {
    while (!enough(frames)) {
      if (Date.now() > deadline)
        throw new Error(`SSE: only ${frames.length} frames within ${timeoutMs} ms`);
      const event = await sse.next();
      if (event === null) break;
      frames.push(event);
    }
  } finally {
    await sse.cancel();
  }
  return frames;
}
