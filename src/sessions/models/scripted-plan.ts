/**
 * What the scripted model (scripted.ts, whose opening comment is the behaviour's
 * specification) answers to one request: the prompt and `providerOptions.scripted` in, a
 * ScriptedPlan out (text, tool calls or a failure). Pure and deterministic; the model itself
 * only streams or returns the plan.
 */
import {
  APICallError,
  type LanguageModelV4CallOptions,
  type LanguageModelV4Prompt,
  type LanguageModelV4ToolApprovalResponsePart,
  type LanguageModelV4ToolResultOutput,
  type LanguageModelV4ToolResultPart,
} from "@ai-sdk/provider";
import type { ToolCall } from "../events";
import { isRetryableStatus } from "./collect";

/** The request URL the scripted model reports (it contacts nothing). */
export const SCRIPTED_URL = "scripted://scripted/v1/chat";

/** The options the scripted model reads from `providerOptions.scripted`. */
export interface ScriptedProviderOptions {
  requestId?: string;
  attempt?: number;
  /** `compaction`: summarise the transcript text of the last user message. */
  task?: "compaction";
}

/** What the scripted model will do for one request (exported for tests and debugging). */
export type ScriptedPlan =
  | { kind: "text"; text: string }
  | { kind: "tool-calls"; calls: ToolCall[] }
  | { kind: "fail"; error: APICallError; cleanupFails: boolean };

const TOOL_NAME = "[a-z_][a-z0-9_]*";
const CALL_LINE = new RegExp(`^call[ \\t]+(${TOOL_NAME})(?:[ \\t]+(.*))?$`);
const CALL_BLOCK = new RegExp(`^call[ \\t]+(${TOOL_NAME})(?:\\s+([\\s\\S]*))?$`);
const FAIL = /^fail\s+(\d{3})\s+(\d+|always)(\s+cleanup)?$/;
const REPLY = /^reply\s+(\d{1,8})$/;
const MAX_SCRIPTED_REPLY_BYTES = 16 * 1024 * 1024;
const REPLY_WORDS = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor ";

/** The text of `reply <bytes>`: words and spaces, exactly `bytes` ASCII characters. */
export function scriptedReplyText(bytes: number): string {
  const whole = REPLY_WORDS.repeat(Math.floor(bytes / REPLY_WORDS.length));
  return whole + REPLY_WORDS.slice(0, bytes - whole.length);
}

/** Decides the scripted model's answer to one request. Pure and deterministic. */
export function planScriptedReply(call: LanguageModelV4CallOptions): ScriptedPlan {
  const { requestId, attempt } = readScriptedOptions(call);
  if (call.providerOptions?.scripted?.task === "compaction")
    return { kind: "text", text: compactionSummary(lastUserText(call.prompt)) };
  const last = call.prompt.at(-1);
  if (last?.role === "tool") return { kind: "text", text: toolResultsSentence(last.content) };

  const message = lastUserText(call.prompt);
  const calls = parseToolCalls(message, requestId);
  if (calls) return { kind: "tool-calls", calls };

  const reply = REPLY.exec(message.trim());
  if (reply && Number(reply[1]) <= MAX_SCRIPTED_REPLY_BYTES)
    return { kind: "text", text: scriptedReplyText(Number(reply[1])) };

  const fail = FAIL.exec(message.trim());
  if (fail) {
    const status = Number(fail[1]);
    const count = fail[2] === "always" ? Number.POSITIVE_INFINITY : Number(fail[2]);
    if (attempt <= count) {
      return {
        kind: "fail",
        cleanupFails: fail[3] !== undefined,
        error: scriptedApiError(status, attempt, fail[2] ?? "", call.prompt),
      };
    }
  }
  if (message.trim() === "history") return { kind: "text", text: describePrompt(call.prompt) };
  return { kind: "text", text: `You said: ${message}` };
}

/** Longest summary the scripted model writes, in characters. */
export const SCRIPTED_SUMMARY_MAX_CHARS = 2_000;

/**
 * The scripted compaction: `Summary of <n> messages: ` and the first five words of each
 * covered message (the lines of the transcript text that start with `[role]`), capped.
 */
export function compactionSummary(transcript: string): string {
  const lines = transcript.split("\n").filter((line) => /^\[[a-z]+[^\]]*\] /.test(line));
  const excerpts = lines.map((line) => line.split(/\s+/).slice(0, 6).join(" "));
  const text = `Summary of ${lines.length} messages: ${excerpts.join(" | ")}`;
  return text.length > SCRIPTED_SUMMARY_MAX_CHARS
    ? text.slice(0, SCRIPTED_SUMMARY_MAX_CHARS)
    : text;
}

/** `history`: what the prompt holds, so tests can see which history reached the model. */
function describePrompt(prompt: LanguageModelV4Prompt): string {
  const system = prompt.find((m) => m.role === "system");
  const summary = system?.role === "system" && system.content.includes(SUMMARY_HEADING);
  const messages = prompt.filter((m) => m.role !== "system");
  const first = messages[0];
  const firstText =
    first?.role === "user" || first?.role === "assistant"
      ? first.content.flatMap((part) => (part.type === "text" ? [part.text] : [])).join(" ")
      : "";
  return `History: ${messages.length} messages; summary: ${summary ? "yes" : "no"}; first: ${JSON.stringify(firstText.slice(0, 60))}`;
}

/** Heads the compaction summary inside the system prompt (see context.ts). */
export const SUMMARY_HEADING = "Summary of the conversation so far:";

function readScriptedOptions(call: LanguageModelV4CallOptions): {
  requestId: string | undefined;
  attempt: number;
} {
  const raw = call.providerOptions?.scripted;
  const requestId = typeof raw?.requestId === "string" ? raw.requestId : undefined;
  const attempt =
    typeof raw?.attempt === "number" && Number.isFinite(raw.attempt) ? raw.attempt : 1;
  return { requestId, attempt };
}

function lastUserText(prompt: LanguageModelV4Prompt): string {
  for (let i = prompt.length - 1; i >= 0; i--) {
    const message = prompt[i];
    if (message?.role !== "user") continue;
    return message.content
      .filter((part) => part.type === "text")
      .map((part) => part.text)
      .join("\n");
  }
  return "";
}

function parseToolCalls(message: string, requestId: string | undefined): ToolCall[] | null {
  const text = message.trim();
  if (!text.startsWith("call")) return null;
  const lines = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
  let parsed: Array<[string, string]> | null = null;
  const perLine = lines.map((line) => CALL_LINE.exec(line));
  if (perLine.every((m) => m !== null)) {
    parsed = perLine.map((m) => [m?.[1] ?? "", m?.[2] ?? ""]);
  } else {
    // One call whose JSON arguments span several lines.
    const block = CALL_BLOCK.exec(text);
    if (block) parsed = [[block[1] ?? "", block[2] ?? ""]];
  }
  if (!parsed) return null;
  return parsed.map(([toolName, args], i) => ({
    toolCallId: requestId ? `${requestId}-call-${i}` : `call-${i}`,
    toolName,
    input: normalizeArgs(args),
  }));
}

function normalizeArgs(args: string): string {
  const trimmed = args.trim();
  if (trimmed === "") return "{}";
  try {
    return JSON.stringify(JSON.parse(trimmed));
  } catch {
    return trimmed;
  }
}

function toolResultsSentence(
  content: ReadonlyArray<LanguageModelV4ToolResultPart | LanguageModelV4ToolApprovalResponsePart>,
): string {
  const items: string[] = [];
  for (const part of content) {
    if (part.type === "tool-result") items.push(`${part.toolName} ${renderOutput(part.output)}`);
  }
  return `Tool results: ${items.length > 0 ? items.join("; ") : "none"}.`;
}

function renderOutput(output: LanguageModelV4ToolResultOutput): string {
  switch (output.type) {
    case "text":
    case "json":
      return `returned ${json(output.value)}`;
    case "error-text":
    case "error-json":
      return `failed with ${json(output.value)}`;
    case "execution-denied":
      return output.reason ? `was denied (${json(output.reason)})` : "was denied";
    case "content":
      return `returned ${json(output.value)}`;
  }
}

function json(value: unknown): string {
  return JSON.stringify(value) ?? "null";
}

function scriptedApiError(
  status: number,
  attempt: number,
  count: string,
  prompt: LanguageModelV4Prompt,
): APICallError {
  const message = `scripted failure: status ${status} (attempt ${attempt}, failing ${count})`;
  return new APICallError({
    message,
    url: SCRIPTED_URL,
    requestBodyValues: { prompt },
    statusCode: status,
    responseHeaders: { "content-type": "application/json" },
    responseBody: JSON.stringify({ error: { message } }),
    isRetryable: isRetryableStatus(status),
  });
}
