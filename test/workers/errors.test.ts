/**
 * Domain errors across the seams: details survive the RPC envelope and are enough for the
 * protocol to build its headers; a corrupt stored record answers its own code; a host's
 * refusal that would only repeat parks a subscription at once; the edge adds the 401 realm.
 */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { RETRYABLE } from "../../src/errors/domain";
import type { DeliveryBatch } from "../../src/streams/delivery";
import { protocolErrorHeaders } from "../../src/streams/protocol/errors";
import { evictDurableObject, runInDurableObject } from "../support/rpc";
import { http, nameOf, ORIGIN, pumpUntil, rpcError, stubFor, uniquePath } from "../support/streams";

async function newStream(label: string) {
  const path = uniquePath(label);
  const stub = stubFor(path);
  await stub.create(nameOf(path), path);
  return { path, stub };
}

describe("details cross the RPC envelope", () => {
  it("a stream_closed refusal keeps its tail, from which the protocol builds Stream-Closed", async () => {
    const { path, stub } = await newStream("closed-details");
    await stub.appendBatch([
      { type: "test/a", payload: 1 },
      { type: "test/a", payload: 2 },
    ]);
    const head = await stub.close({ status: "ended" });
    const error = await rpcError(stub.append({ type: "test/a", payload: 3 }));
    expect(error.code).toBe("stream_closed");
    expect(error.details).toEqual({ tail: head.lastOffset });
    const headers = protocolErrorHeaders(error);
    expect(headers.get("Stream-Closed")).toBe("true");
    expect(headers.get("Stream-Next-Offset")).toBe(head.wireOffset);

    // The same refusal over the protocol carries the same headers.
    const res = await http(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ type: "test/a", payload: 4 }),
    });
    expect(res.status).toBe(409);
    expect(res.headers.get("Stream-Closed")).toBe("true");
    expect(res.headers.get("Stream-Next-Offset")).toBe(head.wireOffset);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("stream_closed");
  });
});

describe("a corrupt stored record", () => {
  it("answers corrupt_record naming the record, over RPC and HTTP (500)", async () => {
    const { path, stub } = await newStream("corrupt-meta");
    await runInDurableObject(stub, (_instance, state) => {
      state.storage.sql.exec("UPDATE stream_meta SET tail = -5 WHERE singleton = 1");
    });
    // The metadata is cached by the live object: a fresh one reads the row back.
    await evictDurableObject(stub);
    const error = await rpcError(stub.head());
    expect(error.code).toBe("corrupt_record");
    expect(error.message).toMatch(/^stream metadata is corrupt: at tail: /);
    expect(error.details).toEqual({ record: "stream metadata" });

    const res = await http(path, { method: "GET" });
    expect(res.status).toBe(500);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("corrupt_record");
    expect(body.error.message).toMatch(/stream metadata is corrupt/);
  });
});

describe("a corrupt subscription row", () => {
  it.each([
    ["a negative cursor", "cursor = -1"],
    ["a cursor that is not a number", "cursor = 'x'"],
    ["an unknown health", "health = 'sleepy'"],
  ])(
    "is refused as corrupt_record even after the same row was read and validated (%s)",
    async (_what, change) => {
      const { stub } = await newStream("corrupt-sub");
      await stub.configureSubscription({
        key: "corrupt",
        callable: {
          kind: "durable-object",
          binding: "TEST_SUBSCRIBERS",
          name: "nobody",
          method: "receive",
        },
        eventTypes: ["test/a"],
      });
      // Read (and remembered as validated) while intact.
      expect((await stub.listSubscriptions()).map((s) => s.key)).toEqual(["corrupt"]);
      await runInDurableObject(stub, (_instance, state) => {
        state.storage.sql.exec(`UPDATE stream_subscriptions SET ${change} WHERE key = 'corrupt'`);
      });
      const error = await rpcError(stub.listSubscriptions());
      expect(error.code).toBe("corrupt_record");
      expect(error.message).toMatch(/stored subscription corrupt/);
    },
  );
});

describe("delivery classifies a host's refusal by its code", () => {
  it("a host without the named processor (not_found) parks the subscription at its first failure", async () => {
    const { stub } = await newStream("no-processor");
    const key = "nope@TEST_HOSTS/host";
    await stub.configureSubscription({
      key,
      callable: {
        kind: "durable-object",
        binding: "TEST_HOSTS",
        name: `host-${crypto.randomUUID()}`,
        method: "deliver",
      },
      eventTypes: ["test/a"],
      startAt: "beginning",
    });
    await stub.appendBatch([{ type: "test/a", payload: 1 }]);
    await pumpUntil(stub, async () =>
      (await stub.listSubscriptions()).some((s) => s.key === key && s.status === "parked"),
    );
    const { events } = await stub.read({ after: 0 });
    const parked = events.find((e) => e.type === "stream/subscriber-parked");
    expect(parked?.payload).toMatchObject({
      key,
      attempts: 1,
      retryable: false,
      error: expect.stringMatching(/no processor named "nope"/),
    });
  });
});

describe("a host's corrupt processor state", () => {
  it("answers a delivery with corrupt_record naming the processor, which the stream does not retry", async () => {
    const hosts = env.TEST_HOSTS;
    const hostName = `corrupt-${crypto.randomUUID()}`;
    const host = hosts.get(hosts.idFromName(hostName));
    await runInDurableObject(host, (_instance, state) => {
      state.storage.sql.exec(
        "INSERT INTO processor_state (processor, state, checkpoint, updated_at) VALUES (?, ?, ?, ?)",
        "counter",
        JSON.stringify({ total: "forty" }),
        0,
        Date.now(),
      );
    });
    const batch: DeliveryBatch = {
      stream: "/errors/direct",
      streamName: "default:/errors/direct",
      subscriptionKey: `counter@TEST_HOSTS/${hostName}`,
      anchorOffset: 0,
      events: [
        {
          offset: 1,
          type: "test/incremented",
          payload: { by: 1 },
          createdAt: new Date(0).toISOString(),
        },
      ],
      nextOffset: 2,
    };
    const answer = await host.deliver(batch);
    expect(answer).toMatchObject({
      ok: false,
      error: {
        code: "corrupt_record",
        message: expect.stringMatching(/^stored state of processor counter is corrupt: .*at total/),
        details: { record: "stored state of processor counter" },
      },
    });
    expect(RETRYABLE.corrupt_record).toBe(false);
  });
});

describe("the edge's 401 challenge", () => {
  it("admin routes name their own realm; tenant routes the default one", async () => {
    const admin = await fetch_("/admin/tenants");
    expect(admin.status).toBe(401);
    expect(admin.headers.get("www-authenticate")).toBe(
      'Bearer realm="durable-agent-sessions-admin"',
    );
    await admin.body?.cancel();
    const tenant = await fetch_("/v1/sessions", { authorization: "Bearer das_not_a_key" });
    expect(tenant.status).toBe(401);
    expect(tenant.headers.get("www-authenticate")).toBe(
      'Bearer realm="durable-agent-sessions", error="invalid_token"',
    );
    await tenant.body?.cancel();
  });
});

/** A request to any worker route (helpers' `http` is for stream paths). */
function fetch_(pathname: string, headers: Record<string, string> = {}): Promise<Response> {
  return exports.default.fetch(`${ORIGIN}${pathname}`, { headers });
}
