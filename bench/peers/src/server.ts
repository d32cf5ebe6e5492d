/**
 * The peer of `npm run bench:peers`: a stock `AIChatAgent` (Cloudflare Agents SDK), written
 * the way its README shows, routed with `routeAgentRequest` (WebSocket at
 * `/agents/chat-agent/<name>`, transcript at `/agents/chat-agent/<name>/get-messages`), and
 * persisting messages as AIChatAgent does. Its model does the same work as our `scripted`
 * model at zero delay: `You said: <last user message>` streamed as one text delta per word
 * (a word plus its trailing whitespace, the split of src/sessions/models/scripted.ts), no
 * timers between deltas. `/healthz` lets the bench's dev-server helper see it is up.
 */
import type { LanguageModelV4StreamPart } from "@ai-sdk/provider";
import { AIChatAgent } from "@cloudflare/ai-chat";
import { routeAgentRequest } from "agents";
import { convertToModelMessages, simulateReadableStream, streamText } from "ai";
import { MockLanguageModelV4 } from "ai/test";

interface Env {
  ChatAgent: DurableObjectNamespace<ChatAgent>;
}

/** The same split as the scripted model's `splitWords`: each delta is a word plus its trailing space. */
export function splitWords(text: string): string[] {
  return text.split(/(?<=\s)(?=\S)/).filter((word) => word.length > 0);
}

const usage = {
  inputTokens: {
    total: undefined,
    noCache: undefined,
    cacheRead: undefined,
    cacheWrite: undefined,
  },
  outputTokens: { total: undefined, text: undefined, reasoning: undefined },
};

function echoModel(): MockLanguageModelV4 {
  return new MockLanguageModelV4({
    modelId: "echo",
    doStream: async ({ prompt }) => {
      let text = "";
      for (let i = prompt.length - 1; i >= 0; i--) {
        const message = prompt[i];
        if (message?.role !== "user") continue;
        text = message.content
          .filter((part) => part.type === "text")
          .map((part) => part.text)
          .join("\n");
        break;
      }
      const reply = `You said: ${text}`;
      const chunks: LanguageModelV4StreamPart[] = [
        { type: "stream-start", warnings: [] },
        { type: "response-metadata", modelId: "echo" },
        { type: "text-start", id: "txt-0" },
        ...splitWords(reply).map(
          (delta): LanguageModelV4StreamPart => ({ type: "text-delta", id: "txt-0", delta }),
        ),
        { type: "text-end", id: "txt-0" },
        { type: "finish", usage, finishReason: { unified: "stop", raw: "stop" } },
      ];
      // `null` delays: no timer at all between chunks, like the scripted model at 0 ms.
      return {
        stream: simulateReadableStream({ chunks, initialDelayInMs: null, chunkDelayInMs: null }),
      };
    },
  });
}

export class ChatAgent extends AIChatAgent<Env> {
  override async onChatMessage() {
    const result = streamText({
      model: echoModel(),
      messages: await convertToModelMessages(this.messages),
    });
    return result.toUIMessageStreamResponse();
  }
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    if (new URL(request.url).pathname === "/healthz") return new Response("ok");
    return (await routeAgentRequest(request, env)) ?? new Response("Not found", { status: 404 });
  },
} satisfies ExportedHandler<Env>;
