import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { waitFor } from "../support/wait";

const streams = (name: string) => env.STREAMS.get(env.STREAMS.idFromName(name));
const hosts = (name: string) => env.TEST_HOSTS.get(env.TEST_HOSTS.idFromName(name));

describe("processors (smoke)", () => {
  it("delivers consumed events to a processor and reduces them once", async () => {
    const name = "default:/proc/a";
    const stream = streams(name);
    await stream.create(name, "/proc/a");
    await stream.appendBatch([
      { type: "test/incremented", payload: { by: 2 } },
      { type: "test/noted", payload: { text: "x" } },
    ]);
    const host = hosts("h1");
    await host.subscribe("counter", name, "h1", "beginning");
    await stream.append({ type: "test/incremented", payload: { by: 5 } });
    await waitFor(
      async () => (await host.snapshot("counter")).checkpoint === (await stream.head()).lastOffset,
    );
    const snap = await host.snapshot("counter");
    expect(snap.state).toEqual({ total: 7, seen: 2 });
    const effects = await host.effects();
    expect(effects.map((e) => e.offset)).toEqual([4]);
  });
});
