/** Reads SSE frames from a response with eventsource-parser until `enough` says so, then cancels. */
import { createParser, type EventSourceMessage } from "eventsource-parser";

export async function parseSse(
  res: Response,
  enough: (frames: EventSourceMessage[]) => boolean,
  timeoutMs = 10_000,
): Promise<EventSourceMessage[]> {
  const frames: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => frames.push(event) });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const deadline = Date.now() + timeoutMs;
  try {
    while (!enough(frames)) {
      if (Date.now() > deadline)
        throw new Error(`SSE: only ${frames.length} frames within ${timeoutMs} ms`);
      const { done, value } = await reader.read();
      if (done) break;
      parser.feed(decoder.decode(value, { stream: true }));
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return frames;
}
