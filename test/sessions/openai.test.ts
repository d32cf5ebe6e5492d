/**
 * A whole session turn on the OpenAI-compatible provider, against a stubbed `fetch` that
 * answers like an OpenAI-compatible server: first a 429, then a 503, then a real
 * chat-completions SSE stream. The model processor retries with backoff and the turn ends
 * with the streamed reply. (This project sets OPENAI_BASE_URL and MODEL_RETRY_BASE_MS=10.)
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { chatCompletionChunk as chunk } from "../support/models";
import { createSession, sendMessage, sessionEvents, waitForSession } from "../support/session-api";

const stream = (parts: string[]) =>
  new Response(new TextEncoder().encode(parts.join("")), {
    status: 200,
    headers: { "content-type": "text/event-stream" },
  });

afterEach(() => vi.unstubAllGlobals());

describe("a session on the OpenAI-compatible provider", () => {
  it("retries a 429 and a 503, then completes the turn with the streamed reply", async () => {
    const realFetch = globalThis.fetch;
    const calls: { url: string; body: Record<string, unknown>; auth: string | null }[] = [];
    vi.stubGlobal("fetch", async (input: RequestInfo | URL, init?: RequestInit) => {
      const request = new Request(input, init);
      if (!request.url.startsWith("https://llm.example.com/")) return realFetch(input, init);
      calls.push({
        url: request.url,
        body: (await request.json()) as Record<string, unknown>,
        auth: request.headers.get("authorization"),
      });
      if (calls.length === 1) {
        return new Response(
          JSON.stringify({ error: { message: "slow down", type: "rate_limit" } }),
          {
            status: 429,
            headers: { "content-type": "application/json", "retry-after": "0" },
          },
        );
      }
      if (calls.length === 2) return new Response("upstream unavailable", { status: 503 });
      return stream([
        chunk({ role: "assistant", content: "Hello" }),
        chunk({ content: " from" }),
        chunk({ content: " the stub" }),
        chunk({}, "stop"),
        "data: [DONE]\n\n",
      ]);
    });
    const id = await createSession({ model: "openai:gpt-test" });
    await sendMessage(id, "hi there");
    const done = await waitForSession(
      id,
      (s) => s.live.status === "idle" && s.live.messages.length === 2,
    );
    expect(done.live.messages[1]).toMatchObject({
      role: "assistant",
      content: "Hello from the stub",
    });
    expect(calls).toHaveLength(3);
    expect(calls[2]!.url).toBe("https://llm.example.com/v1/chat/completions");
    expect(calls[2]!.auth).toBe("Bearer test-openai-key");
    expect(calls[2]!.body).toMatchObject({ model: "gpt-test", stream: true });
    const events = await sessionEvents(id);
    expect(
      events
        .filter((e) => e.type === "model/request-started")
        .map((e) => (e.payload as { attempt: number }).attempt),
    ).toEqual([1, 2, 3]);
    expect(
      events
        .filter((e) => e.type === "model/delta-produced")
        .map((e) => (e.payload as { text: string }).text)
        .join(""),
    ).toBe("Hello from the stub");
    expect(events.filter((e) => e.type === "model/request-completed")).toHaveLength(1);
  });

  it("fails the session after a 400, without retrying", async () => {
    const realFetch = globalThis.fetch;
    let calls = 0;
    vi.stubGlobal("fetch", async (input: RequestInfo | URL, init?: RequestInit) => {
      const request = new Request(input, init);
      if (!request.url.startsWith("https://llm.example.com/")) return realFetch(input, init);
      calls += 1;
      return new Response(JSON.stringify({ error: { message: "bad request: unknown model" } }), {
        status: 400,
        headers: { "content-type": "application/json" },
      });
    });
    const id = await createSession({ model: "openai:gpt-test" });
    await sendMessage(id, "hi");
    const failed = await waitForSession(id, (s) => s.live.status === "failed");
    expect(failed.live.lastError).toContain("unknown model");
    expect(calls).toBe(1);
  });
});
