/**
 * The two windows onto a session's transcript that its RPC answers: a page chosen by size
 * from a message index (GET /v1/sessions/:id/messages) and the newest messages within a
 * byte budget (the `live` view). Both size the window from the stored byte counts first, so
 * a window of huge messages reads only what it returns.
 */
import type { ProcessorTables } from "../processors/processor";
import type { SessionLive, TranscriptPage } from "./agent-rpc";
import { messageCount, messageSizes, readMessages } from "./transcript";

/** `live.messages` is the newest messages, at most this many and this many bytes. */
export const LIVE_MESSAGES = 20;
export const LIVE_MESSAGE_BYTES = 256 * 1024;
/** A page of `messages()` holds at most this many bytes of content (and at least one message). */
export const MESSAGE_PAGE_BYTES = 1024 * 1024;

/** A page of the transcript from message index `from`: at most `limit` messages and MESSAGE_PAGE_BYTES. */
export function transcriptPage(
  tables: ProcessorTables,
  from: number,
  limit: number,
): TranscriptPage {
  const total = messageCount(tables);
  const sizes = messageSizes(tables, from, Math.min(total, from + limit));
  let bytes = 0;
  let end = from;
  for (const m of sizes) {
    if (end > from && bytes + m.bytes > MESSAGE_PAGE_BYTES) break;
    bytes += m.bytes;
    end = m.index + 1;
  }
  const page: TranscriptPage["messages"] = readMessages(tables, from, end).map((m) => ({
    index: m.index,
    ...m.message,
  }));
  const last = page.at(-1)?.index;
  const next = last === undefined ? null : last + 1 < total ? last + 1 : null;
  return { messages: page, messageCount: total, next };
}

/** The newest messages within LIVE_MESSAGES and LIVE_MESSAGE_BYTES. */
export function recentMessages(
  tables: ProcessorTables,
): Pick<SessionLive, "messages" | "messageCount" | "messagesFrom"> {
  const total = messageCount(tables);
  const recent = messageSizes(tables, Math.max(0, total - LIVE_MESSAGES), total);
  let bytes = 0;
  let first = recent.length;
  // At least the newest message (inline content is at most 64 KiB, or ~100 KB in events
  // from before chunking; larger content is a ref the client reads from the stream).
  while (
    first > 0 &&
    (first === recent.length || bytes + recent[first - 1]!.bytes <= LIVE_MESSAGE_BYTES)
  ) {
    first -= 1;
    bytes += recent[first]!.bytes;
  }
  const from = recent[first]?.index ?? total;
  return {
    messages: readMessages(tables, from, total).map((m) => m.message),
    messageCount: total,
    messagesFrom: from,
  };
}

/** How many messages the transcript holds and their bytes of content. */
export function transcriptStats(tables: ProcessorTables): {
  transcriptBytes: number;
  messageCount: number;
} {
  const row = tables
    .exec<{ bytes: number | null; n: number }>(
      `SELECT sum(bytes) AS bytes, count(*) AS n FROM ${tables.name("messages")}`,
    )
    .one();
  return { transcriptBytes: row.bytes ?? 0, messageCount: row.n };
}
