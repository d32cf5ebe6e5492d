/**
 * Pure logic behind the hostile-input fixes (issue 7 §2): strict RFC 3339 and expiry bounds,
 * IP literal parsing and the outbound URL policy, the method allowlist, webhook answers,
 * the 405 route index and the reserved processor idempotency keys.
 */
import { describe, expect, it } from "vitest";
import { parseIpv4, parseIpv6, refusedIpv6 } from "../../src/callables/addresses";
import { callableSchema } from "../../src/callables/descriptor";
import { CallableError } from "../../src/callables/errors";
import { webhookAck } from "../../src/callables/invoke";
import { type CallablePolicy, checkCallable, checkWebhookUrl } from "../../src/callables/policy";
import { parseAllowlist } from "../../src/env";
import { DomainError } from "../../src/errors/domain";
import { statusOf } from "../../src/errors/http";
import { allowIndex } from "../../src/http/allow";
import type { StateOf } from "../../src/processors/contract";
import { toolsContract } from "../../src/sessions/contracts";
import { sessionEvents } from "../../src/sessions/events";
import { ToolProcessor } from "../../src/sessions/processors/tools";
import { builtinTools } from "../../src/sessions/tools/builtin";
import {
  checkTtl,
  EXPIRY_CEILING_MS,
  MAX_TTL_SECONDS,
  normaliseStoredExpiry,
  parseExpiresAt,
  parseRfc3339,
} from "../../src/streams/expiry";
import { isProcessorKey, processorKey } from "../../src/streams/idempotency-keys";

describe("strict RFC 3339", () => {
  it.each([
    ["2030-02-28T00:00:00Z", Date.UTC(2030, 1, 28)],
    ["2028-02-29T00:00:00Z", Date.UTC(2028, 1, 29)], // leap year
    ["2000-02-29T12:00:00Z", Date.UTC(2000, 1, 29, 12)], // divisible by 400
    ["2030-04-30T23:59:59.999Z", Date.UTC(2030, 3, 30, 23, 59, 59, 999)],
    ["2030-01-01T01:00:00+01:00", Date.UTC(2030, 0, 1)],
    ["2029-12-31T19:30:00-04:30", Date.UTC(2030, 0, 1)],
    ["2030-01-01t00:00:00z", Date.UTC(2030, 0, 1)],
  ])("%s is read exactly", (text, ms) => {
    expect(parseRfc3339(text)).toBe(ms);
  });

  it("years below 100 are not read as 19xx", () => {
    expect(new Date(parseRfc3339("0050-06-01T00:00:00Z")!).getUTCFullYear()).toBe(50);
  });

  it.each([
    "2030-02-30T00:00:00Z", // rolled over to March 2 before
    "2030-02-29T00:00:00Z", // not a leap year
    "1900-02-29T00:00:00Z", // divisible by 100, not by 400
    "2030-04-31T00:00:00Z",
    "2030-13-01T00:00:00Z",
    "2030-00-10T00:00:00Z",
    "2030-01-00T00:00:00Z",
    "2030-01-01T25:00:00Z",
    "2030-01-01T24:00:00Z",
    "2030-01-01T00:60:00Z",
    "2030-01-01T00:00:61Z",
    "2030-01-01T00:00:00+24:00",
    "2030-01-01T00:00:00+01:60",
    "2030-01-01T00:00Z", // seconds are required
    "2030-01-01 00:00:00Z",
    "2030-01-01T00:00:00", // offset is required
    "not-a-timestamp",
    "",
  ])("%s is refused", (text) => {
    expect(parseRfc3339(text)).toBeNull();
  });
});

describe("expiry bounds", () => {
  const now = Date.UTC(2026, 11, 1);
  const status = (fn: () => unknown) => {
    try {
      fn();
    } catch (error) {
      expect(error).toBeInstanceOf(DomainError);
      return { status: statusOf(error as DomainError), message: (error as DomainError).message };
    }
    return null;
  };

  it("TTL 0 … 10 years is accepted; beyond is a 400 naming the range", () => {
    expect(checkTtl(0)).toBe(0);
    expect(checkTtl(MAX_TTL_SECONDS)).toBe(MAX_TTL_SECONDS);
    for (const ttl of [MAX_TTL_SECONDS + 1, 100_000_000_000, Number.MAX_SAFE_INTEGER, -1, 1.5]) {
      const refused = status(() => checkTtl(ttl));
      expect(refused?.status).toBe(400);
      expect(refused?.message).toContain(String(MAX_TTL_SECONDS));
    }
  });

  it("Expires-At must lie between 5 minutes ago and 10 years ahead", () => {
    expect(parseExpiresAt("2027-01-01T00:00:00Z", now)).toBe(Date.UTC(2027, 0, 1));
    expect(parseExpiresAt("2026-11-30T23:56:00Z", now)).toBe(now - 4 * 60_000); // skew window
    for (const text of [
      "9999-12-31T23:59:59Z",
      "0001-01-01T00:00:00Z",
      "2036-12-01T00:00:00Z",
      "2026-11-30T23:50:00Z",
    ]) {
      const refused = status(() => parseExpiresAt(text, now));
      expect(refused?.status, text).toBe(400);
      expect(refused?.message).toMatch(/between .* and .*/);
    }
    expect(status(() => parseExpiresAt("2030-02-30T00:00:00Z", now))?.status).toBe(400);
  });

  it("stored values out of range are clamped when read back; in-range ones are left alone", () => {
    expect(normaliseStoredExpiry(3600, now + 3_600_000)).toBeNull();
    expect(normaliseStoredExpiry(null, null)).toBeNull();
    expect(normaliseStoredExpiry(Number.MAX_SAFE_INTEGER, 9.007e18)).toEqual({
      ttlSeconds: MAX_TTL_SECONDS,
      expiresAt: EXPIRY_CEILING_MS,
    });
    expect(normaliseStoredExpiry(null, Date.UTC(9999, 11, 31))).toEqual({
      ttlSeconds: null,
      expiresAt: EXPIRY_CEILING_MS,
    });
    expect(normaliseStoredExpiry(null, -62_135_596_800_000)).toEqual({
      ttlSeconds: null,
      expiresAt: 0,
    });
    // The ceiling is a date the platform's alarms and Date both accept.
    expect(new Date(EXPIRY_CEILING_MS).toISOString()).toBe("2150-01-01T00:00:00.000Z");
  });
});

describe("IP literals", () => {
  it.each([
    ["127.0.0.1", 0x7f000001],
    ["2130706433", 0x7f000001],
    ["0177.0.0.1", 0x7f000001],
    ["0x7f.1", 0x7f000001],
    ["0x7f000001", 0x7f000001],
    ["127.1", 0x7f000001],
    ["10.1", 0x0a000001],
    ["192.168.0x1.1", 0xc0a80101],
    ["8.8.8.8", 0x08080808],
  ])("IPv4 %s", (text, value) => {
    expect(parseIpv4(text)).toBe(value);
  });

  it.each(["256.0.0.1", "1.2.3.4.5", "08.1.1.1", "1..1", "4294967296", "a.b.c.d"])(
    "not IPv4: %s",
    (text) => {
      expect(parseIpv4(text)).toBeNull();
    },
  );

  it("IPv6 forms expand to eight groups", () => {
    expect(parseIpv6("::")).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(parseIpv6("::1")).toEqual([0, 0, 0, 0, 0, 0, 0, 1]);
    expect(parseIpv6("::127.0.0.1")).toEqual([0, 0, 0, 0, 0, 0, 0x7f00, 1]);
    expect(parseIpv6("0:0:0:0:0:ffff:10.0.0.1")).toEqual([0, 0, 0, 0, 0, 0xffff, 0x0a00, 1]);
    expect(parseIpv6("2606:4700::1111")).toEqual([0x2606, 0x4700, 0, 0, 0, 0, 0, 0x1111]);
    for (const bad of ["1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "::1.2.3", "::g", "1:2:3"])
      expect(parseIpv6(bad), bad).toBeNull();
  });

  it("public IPv6 unicast passes; IPv4-mapped public addresses pass", () => {
    expect(refusedIpv6(parseIpv6("2606:4700::1111")!)).toBeNull();
    expect(refusedIpv6(parseIpv6("::ffff:8.8.8.8")!)).toBeNull();
    expect(refusedIpv6(parseIpv6("64:ff9b::8.8.8.8")!)).toBeNull();
    expect(refusedIpv6(parseIpv6("2002:0808:0808::1")!)).toBeNull();
  });
});

describe("outbound URL policy", () => {
  const strict: CallablePolicy = { allowedMethods: new Map(), allowLoopbackWebhooks: false };
  const loopbackOk: CallablePolicy = { ...strict, allowLoopbackWebhooks: true };

  it.each([
    "https://[::127.0.0.1]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:7f00:1]/",
    "https://[0:0:0:0:0:ffff:10.0.0.1]/",
    "https://[::ffff:0:10.0.0.1]/", // IPv4-translated
    "https://[::10.0.0.1]/",
    "https://[64:ff9b::10.0.0.1]/", // NAT64
    "https://[64:ff9b::7f00:1]/",
    "https://[64:ff9b:1::1]/", // local-use NAT64
    "https://[2002:c0a8:0101::1]/", // 6to4 of 192.168.1.1
    "https://[2002:7f00:1::]/", // 6to4 of 127.0.0.1
    "https://[2001:0:a00:1::1]/", // Teredo server 10.0.0.1
    "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", // Teredo client 127.0.0.1 (inverted)
    "https://[::]/",
    "https://[::1]/",
    "https://[0:0:0:0:0:0:0:1]/",
    "https://[fe80::1]/",
    "https://[febf::1]/",
    "https://[fec0::1]/",
    "https://[fc00::1]/",
    "https://[fdff::1]/",
    "https://[ff02::1]/",
    "https://[2001:db8::1]/",
    "https://[100::1]/",
    "https://[::ffff:169.254.169.254]/",
    "https://2130706433/",
    "https://0177.0.0.1/",
    "https://0x7f.1/",
    "https://127.1/",
    "https://0x7f000001/",
    "https://10.1/",
    "https://0xa9.0xfe.0xa9.0xfe/", // 169.254.169.254
    "https://3232235777/", // 192.168.1.1
    "https://0/",
    "https://224.0.0.1/",
    "https://255.255.255.255/",
  ])("refuses %s", (url) => {
    let caught: unknown;
    try {
      checkWebhookUrl(url, strict);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(CallableError);
    expect((caught as CallableError).retryable).toBe(false);
  });

  it.each([
    "https://8.8.8.8/",
    "https://134744072/", // 8.8.8.8 spelled as a number
    "https://[2606:4700:4700::1111]/",
    "https://[::ffff:8.8.8.8]/",
    "https://127.0.0.1.nip.io/", // a name: cannot be judged from its text (documented)
  ])("accepts %s", (url) => {
    expect(() => checkWebhookUrl(url, strict)).not.toThrow();
  });

  it("loopback spellings count as loopback for local development, private ranges do not", () => {
    for (const url of [
      "http://[::ffff:127.0.0.1]:8787/",
      "http://[::127.0.0.1]/",
      "http://127.1/",
      "http://2130706433/",
    ]) {
      expect(() => checkWebhookUrl(url, loopbackOk), url).not.toThrow();
      expect(() => checkWebhookUrl(url, strict), url).toThrow(CallableError);
    }
    expect(() => checkWebhookUrl("http://[::ffff:10.0.0.1]/", loopbackOk)).toThrow(CallableError);
  });
});

describe("callable allowlist names methods", () => {
  it("parses BINDING:method entries", () => {
    const list = parseAllowlist(" SESSIONS:deliver, AUDIT:receive,AUDIT:replay ,");
    expect([...list.keys()]).toEqual(["SESSIONS", "AUDIT"]);
    expect([...list.get("AUDIT")!]).toEqual(["receive", "replay"]);
  });

  it.each(["SESSIONS", "SESSIONS:", "sessions:deliver", "SESSIONS:deliver:x", "SESSIONS:toString"])(
    "refuses the configuration %s",
    (raw) => {
      expect(() => parseAllowlist(raw)).toThrow(/CALLABLE_BINDINGS/);
    },
  );

  it("a listed binding with an unlisted method is refused", () => {
    const policy: CallablePolicy = {
      allowedMethods: parseAllowlist("TEST_HOSTS:deliver"),
      allowLoopbackWebhooks: false,
    };
    const call = (method: string) => () =>
      checkCallable({ kind: "durable-object", binding: "TEST_HOSTS", name: "h", method }, policy);
    expect(call("deliver")).not.toThrow();
    expect(call("reset")).toThrow(/method reset of TEST_HOSTS is not on the callable allowlist/);
  });

  it.each([
    "toString",
    "valueOf",
    "hasOwnProperty",
    "isPrototypeOf",
    "propertyIsEnumerable",
    "toLocaleString",
    "idFromName",
    "newUniqueId",
    "get",
    "dup",
    "then",
  ])("the descriptor refuses the built-in %s", (method) => {
    expect(
      callableSchema.safeParse({ kind: "durable-object", binding: "B", name: "n", method }).success,
    ).toBe(false);
    expect(callableSchema.safeParse({ kind: "service", binding: "B", method }).success).toBe(false);
  });
});

describe("webhook acknowledgements", () => {
  it("an empty 2xx body acks the batch; {ackOffset} acks that offset", () => {
    expect(webhookAck("", 7)).toEqual({ ackOffset: 7 });
    expect(webhookAck("  \n", 7)).toEqual({ ackOffset: 7 });
    expect(webhookAck('{"ackOffset":3}', 7)).toEqual({ ackOffset: 3 });
  });

  it.each([
    "OK",
    "<html>login</html>",
    "{}",
    "null",
    "[]",
    '{"ackOffset":"3"}',
    '{"ackOffset":-1}',
  ])("%s is not an acknowledgement", (text) => {
    expect(() => webhookAck(text, 7)).toThrow(/not an acknowledgement/);
  });
});

describe("405 route index", () => {
  const allowed = allowIndex([
    { method: "ALL", path: "/*" },
    { method: "OPTIONS", path: "/*" },
    { method: "POST", path: "/v1/sessions" },
    { method: "GET", path: "/v1/sessions" },
    { method: "GET", path: "/v1/sessions/:id" },
    { method: "DELETE", path: "/v1/sessions/:id" },
    { method: "POST", path: "/v1/sessions/:id/tool-calls/:toolCallId/decision" },
    { method: "ALL", path: "/v1/stream/*" },
  ]);

  it("lists a known path's methods, in a stable order", () => {
    expect(allowed("/v1/sessions")).toEqual(["GET", "HEAD", "POST", "OPTIONS"]);
    expect(allowed("/v1/sessions/abc")).toEqual(["GET", "HEAD", "DELETE", "OPTIONS"]);
    expect(allowed("/v1/sessions/a/tool-calls/b/decision")).toEqual(["POST", "OPTIONS"]);
  });

  it("knows nothing of unknown paths or catch-alls", () => {
    expect(allowed("/v1/nothing")).toEqual([]);
    expect(allowed("/v1/sessions/a/b")).toEqual([]);
    expect(allowed("/v1/stream/x")).toEqual([]);
  });
});

describe("processor idempotency keys", () => {
  it("the keys processors make are recognised; ordinary client keys are not", () => {
    expect(isProcessorKey(processorKey("agent", "turn-start", 12))).toBe(true);
    expect(isProcessorKey("counter/count@3")).toBe(true);
    expect(isProcessorKey("tools/approval-call/1@44")).toBe(true);
    for (const key of ["order-1", "order/1", "a@1", "input:x", "session/created", "x/y@z", "/a@1"])
      expect(isProcessorKey(key), key).toBe(false);
  });
});

describe("processor state keyed by model-chosen ids", () => {
  const tools = new ToolProcessor(builtinTools, {
    storage: { sql: { exec: () => undefined } } as unknown as DurableObjectStorage,
    sessionId: () => "s",
  });
  const ev = (offset: number, type: string, payload: unknown) =>
    ({ offset, type, payload, createdAt: "2026-01-01T00:00:00.000Z" }) as never;

  it.each(["constructor", "toString", "hasOwnProperty", "valueOf"])(
    "a tool call with id %s is tracked like any other",
    (toolCallId) => {
      let state = toolsContract.initialState as StateOf<typeof toolsContract>;
      state = tools.reduce({
        state,
        event: ev(1, "tool/call-requested", {
          toolCallId,
          turnId: "t",
          toolName: "notes_write",
          input: "{}",
          needsApproval: true,
        }),
      });
      state = tools.reduce({
        state,
        event: ev(2, "tool/approval-requested", { toolCallId, toolName: "notes_write", args: {} }),
      });
      expect(Object.hasOwn(state.calls, toolCallId)).toBe(true);
      expect(state.calls[toolCallId]).toMatchObject({ status: "awaiting", causeAt: 1 });
      expect(Object.getPrototypeOf(state.calls)).toBe(Object.prototype);
      expect(toolsContract.state.parse(state).calls[toolCallId]?.status).toBe("awaiting");
    },
  );

  it("an approval for an id no call has does not invent one", () => {
    const state = tools.reduce({
      state: toolsContract.initialState as StateOf<typeof toolsContract>,
      event: ev(1, "tool/approval-decided", {
        toolCallId: "constructor",
        approved: true,
        reason: null,
      }),
    });
    expect(Object.keys(state.calls)).toEqual([]);
  });

  it("__proto__ is refused as an id by the event schemas", () => {
    expect(
      sessionEvents["tool/approval-decided"].safeParse({
        toolCallId: "__proto__",
        approved: true,
        reason: null,
      }).success,
    ).toBe(false);
  });
});
