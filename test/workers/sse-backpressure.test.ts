/**
 * The SSE pump's buffer (src/streams/protocol/sse.ts): it moves on to the next commit without
 * waiting for the client to pull each frame, and a client that stops reading still stops it
 * after a bounded amount (the response never buffers the stream without bound). The pump runs
 * here inside a stream's Durable Object over a StreamCore of its own, with a chunk cache that
 * records how far the pump has read, so its progress is observed directly rather than timed.
 */
import { describe, expect, it } from "vitest";
import type { StreamCore as Core } from "../../src/streams/core";
import { StreamCore } from "../../src/streams/core";
import { StreamLog } from "../../src/streams/log";
import { type Chunk, ChunkCache } from "../../src/streams/protocol/chunks";
import { protocolFramer, SSE_BUFFER_BYTES, sseResponse } from "../../src/streams/protocol/sse";
import { TailWaiters } from "../../src/streams/tail-waiters";
import { uid } from "../support/fixtures";
import { runInDurableObject } from "../support/rpc";
import { streamClient } from "../support/streams";
import { waitFor } from "../support/wait";

/** A chunk cache that remembers the furthest position the pump has read through. */
class RecordingChunks extends ChunkCache {
  readThrough = 0;
  override read(...args: Parameters<ChunkCache["read"]>): Chunk {
    const chunk = super.read(...args);
    this.readThrough = Math.max(this.readThrough, chunk.next);
    return chunk;
  }
}

const noPeers = {
  forkSnapshot: () => Promise.reject(new Error("no forks here")),
  exportMessages: () => Promise.reject(new Error("no forks here")),
  releaseFork: () => Promise.resolve(),
};

/** A fresh JSON stream in this Durable Object's storage, served by a core of the test's own. */
function freshCore(state: DurableObjectState): Core {
  return new StreamCore(new StreamLog(state.storage), new TailWaiters(), noPeers, {
    background: () => {},
    systemEvent: () => {},
    stored: () => {},
    committed: () => {},
    purged: () => {},
  });
}

async function create(core: Core, path: string) {
  await core.create({
    name: `test:${path}`,
    path,
    contentType: "application/json",
    ttlSeconds: null,
    expiresAt: null,
    close: false,
    fork: null,
    body: null,
  });
}

const appendJson = (core: Core, value: unknown) =>
  core.append({
    body: {
      kind: "bytes",
      bytes: new TextEncoder().encode(JSON.stringify(value)),
      contentType: "application/json",
    },
  });

/** Lets every pending task (the pump's continuations) run. */
const yieldTasks = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("SSE pump buffer", () => {
  it("reads the next commit while earlier frames are still unread by the client", async () => {
    const path = `/sse-buffer/${uid()}`;
    await runInDurableObject(streamClient(`test:${path}`), async (_i, state) => {
      const core = freshCore(state);
      await create(core, path);
      const chunks = new RecordingChunks();
      const request = new Request("http://do/stream");
      const response = sseResponse(
        core,
        chunks,
        request,
        0,
        60_000,
        protocolFramer(chunks, "application/json", null),
      );
      // Nobody reads the body: with an unbuffered response, the first frame's write would
      // wait for a pull that never comes and the pump would never see these commits.
      for (let n = 1; n <= 3; n++) {
        appendJson(core, { n });
        await waitFor(() => chunks.readThrough === n, 5_000, 1);
      }
      const text = await readUntil(response, (t) => t.includes('{"n":3}'));
      expect(text).toContain('{"n":1}');
      expect(text).toContain('{"n":2}');
    });
  });

  it("a client that stops reading stops the pump after a bounded amount, and nothing is lost", async () => {
    const path = `/sse-bounded/${uid()}`;
    await runInDurableObject(streamClient(`test:${path}`), async (_i, state) => {
      const core = freshCore(state);
      await create(core, path);
      const chunks = new RecordingChunks();
      const response = sseResponse(
        core,
        chunks,
        new Request("http://do/stream"),
        0,
        60_000,
        protocolFramer(chunks, "application/json", null),
      );
      // 64 commits of 8 KiB each (512 KiB, eight times the buffer), the pump given every
      // chance to run between them, while the client reads nothing.
      const EVENT_BYTES = 8 * 1024;
      const EVENTS = 64;
      const pad = "x".repeat(EVENT_BYTES);
      for (let n = 1; n <= EVENTS; n++) {
        appendJson(core, { n, pad });
        await yieldTasks();
      }
      await yieldTasks();
      // The pump has taken what fits in the buffer plus the frame that filled it, no more.
      const framesHeld = Math.ceil(SSE_BUFFER_BYTES / EVENT_BYTES) + 2;
      expect(chunks.readThrough).toBeGreaterThan(0);
      expect(chunks.readThrough).toBeLessThanOrEqual(framesHeld);
      // Once the client reads, the pump resumes and every event arrives, in order.
      const text = await readUntil(response, (t) => t.includes(`{"n":${EVENTS},`));
      const seen = [...text.matchAll(/\{"n":(\d+),/g)].map((m) => Number(m[1]));
      expect(seen).toEqual(Array.from({ length: EVENTS }, (_, i) => i + 1));
    });
  });
});

/** Reads the SSE body until `done` holds for the text so far, then cancels it. */
async function readUntil(response: Response, done: (text: string) => boolean): Promise<string> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  try {
    while (!done(text)) {
      const { value, done: ended } = await reader.read();
      if (ended) break;
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return text;
}
