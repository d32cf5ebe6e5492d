/**
 * Context windows. A model has a budget (bytes of prompt text); when the system prompt, the
 * tool specs, the latest compaction summary and the messages after it no longer fit, the
 * oldest of those messages are compacted: the model summarises them, the summary becomes an
 * event (`context/compacted`), and later prompts carry the summary (in the system prompt) plus
 * the window of messages after it. Nothing is deleted: the transcript keeps every message.
 *
 * Everything here is pure; the model processor reads sizes and messages from the transcript
 * rows and appends the events.
 */
import type { ChatMessage } from "./events";
import { SUMMARY_HEADING } from "./models/scripted-plan";

export interface MessageSize {
  index: number;
  role: string;
  bytes: number;
}

/**
 * Where to compact, or null when the window fits (or nothing older than the last message is
 * left to compact). Keeps the newest messages within half the budget (at least the last one)
 * and never starts the window on a tool result whose call would be left behind.
 */
export function planCompaction(options: {
  budget: number;
  /** Bytes that are in every prompt: system prompt, tool specs, current summary. */
  fixedBytes: number;
  /** Index of the first message after the current summary. */
  from: number;
  /** Sizes of messages `from … n-1`, in order. */
  sizes: MessageSize[];
}): number | null {
  const { budget, fixedBytes, from, sizes } = options;
  const total = fixedBytes + sizes.reduce((sum, m) => sum + m.bytes, 0);
  if (total <= budget || sizes.length < 2) return null;
  let kept = 0;
  let first = sizes.length;
  for (let i = sizes.length - 1; i >= 0; i--) {
    const bytes = sizes[i]!.bytes;
    if (first < sizes.length && kept + bytes > budget / 2) break;
    kept += bytes;
    first = i;
  }
  while (first > 0 && sizes[first]!.role === "tool") first -= 1;
  const through = from + first;
  return through > from ? through : null;
}

/** The system prompt of a request: the session's, plus the compaction summary if there is one. */
export function systemWithSummary(system: string, summary: string | null): string {
  if (summary === null) return system;
  const parts = [system.trim(), `${SUMMARY_HEADING}\n${summary}`].filter((p) => p !== "");
  return parts.join("\n\n");
}

export const COMPACTION_SYSTEM =
  "You compact a conversation for your own later reference. Write a concise summary of the " +
  "transcript you are given: facts, decisions, open questions, tool results that matter. " +
  "Reply with the summary only.";

/**
 * The transcript to summarise as one text: the previous summary, then one `[role] content`
 * block per covered message (a tool result as `[tool <name>] <json>`). A block longer than
 * `maxBlockChars` is cut, and says so, so that one huge message cannot blow the summary's
 * own prompt.
 */
export function compactionInput(
  previous: string | null,
  messages: ChatMessage[],
  maxBlockChars = Number.POSITIVE_INFINITY,
): string {
  const lines: string[] = [];
  if (previous !== null) lines.push(`Previous summary: ${previous}`, "");
  const cut = (text: string) =>
    text.length <= maxBlockChars
      ? text
      : `${text.slice(0, maxBlockChars)} […${text.length - maxBlockChars} more characters not shown]`;
  for (const m of messages) {
    if (m.role === "user") lines.push(cut(`[user] ${m.content}`));
    else if (m.role === "assistant") {
      const calls = m.toolCalls.map((c) => ` (calls ${c.toolName} ${c.input})`).join("");
      lines.push(cut(`[assistant] ${m.content}${calls}`));
    } else lines.push(cut(`[tool ${m.toolName}] ${JSON.stringify(m.result)}`));
  }
  return lines.join("\n");
}
