/**
 * Turn tracing (src/trace.ts): silent and free when TRACE_TURNS is unset; with it on, one
 * real turn logs every hop bench/trace-turn.ts joins, keyed by the session's stream.
 */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { trace, tracing } from "../../src/trace";
import { createSession, sendMessage, waitForSession } from "../support/session-api";

const flags = env as { TRACE_TURNS?: string };

function traceLines(spy: { mock: { calls: unknown[][] } }): Array<Record<string, unknown>> {
  return spy.mock.calls
    .map((call) => call[0])
    .filter((line): line is string => typeof line === "string" && line.startsWith('{"trace":'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe("turn tracing", () => {
  afterEach(() => {
    delete flags.TRACE_TURNS;
    vi.restoreAllMocks();
  });

  it("is off by default: no line, and the fields are never built", async () => {
    const log = vi.spyOn(console, "log").mockImplementation(() => undefined);
    const fields = vi.fn(() => ({ x: 1 }));
    expect(tracing()).toBe(false);
    trace("test.hop", fields);
    expect(fields).not.toHaveBeenCalled();
    const id = await createSession();
    await sendMessage(id, "hello");
    await waitForSession(id, (s) => s.live.messages.length === 2);
    expect(traceLines(log)).toEqual([]);
  });

  it("logs each hop of a turn as JSON keyed by the session's stream", async () => {
    flags.TRACE_TURNS = "true";
    const log = vi.spyOn(console, "log").mockImplementation(() => undefined);
    const id = await createSession();
    const { offset } = await sendMessage(id, "hello");
    await waitForSession(id, (s) => s.live.messages.length === 2 && s.status === "idle");
    const lines = traceLines(log).filter((l) => String(l.stream).includes(`/sessions/${id}`));
    const hops = new Set(lines.map((l) => l.trace));
    for (const hop of [
      "http.message.received",
      "http.message.answered",
      "agent.input.appended",
      "agent.input.caught-up",
      "stream.committed",
      "delivery.sent",
      "delivery.acked",
      "host.batch",
      "host.append",
      "host.appended",
      "host.committed",
    ]) {
      expect(hops, hop).toContain(hop);
    }
    for (const line of lines) expect(typeof line.t).toBe("number");
    const input = lines.find(
      (l) =>
        l.trace === "stream.committed" && (l.types as string[]).includes("session/input-added"),
    );
    // The message's commit may also carry what the agent owes for it (a fused append).
    expect((input?.offsets as number[] | undefined)?.[0]).toBe(offset);
    const processors = new Set(
      lines.filter((l) => l.trace === "host.batch").map((l) => l.processor),
    );
    expect(processors).toContain("agent");
    expect(processors).toContain("model");
  });
});
