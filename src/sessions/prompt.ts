/**
 * Turns the provider-neutral conversation (events.ts ChatMessage) into the AI SDK prompt a
 * LanguageModelV4 expects. Consecutive tool results are merged into one tool message, as
 * providers expect all results of one assistant step together.
 */
import type { LanguageModelV4Prompt } from "@ai-sdk/provider";
import type { ChatMessage } from "./events";

function parseArgs(input: string): unknown {
  try {
    return JSON.parse(input);
  } catch {
    return input;
  }
}

export function toPrompt(system: string, messages: ChatMessage[]): LanguageModelV4Prompt {
  const prompt: LanguageModelV4Prompt = [];
  if (system.trim() !== "") prompt.push({ role: "system", content: system });
  for (const message of messages) {
    if (message.role === "user") {
      prompt.push({ role: "user", content: [{ type: "text", text: message.content }] });
    } else if (message.role === "assistant") {
      prompt.push({
        role: "assistant",
        content: [
          ...(message.content === "" ? [] : [{ type: "text" as const, text: message.content }]),
          ...message.toolCalls.map((c) => ({
            type: "tool-call" as const,
            toolCallId: c.toolCallId,
            toolName: c.toolName,
            input: parseArgs(c.input),
          })),
        ],
      });
    } else {
      const part = {
        type: "tool-result" as const,
        toolCallId: message.toolCallId,
        toolName: message.toolName,
        output: message.isError
          ? { type: "error-json" as const, value: message.result }
          : { type: "json" as const, value: message.result },
      };
      const last = prompt.at(-1);
      if (last?.role === "tool") last.content.push(part);
      else prompt.push({ role: "tool", content: [part] });
    }
  }
  return prompt;
}
