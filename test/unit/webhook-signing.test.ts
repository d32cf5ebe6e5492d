/** Webhook signing (src/callables/webhook.ts): Standard Webhooks secrets, signatures, staleness. */
import { describe, expect, it } from "vitest";
import { newWebhookSecret, signWebhook, verifyWebhook } from "../../src/callables/webhook";

describe("webhook signing", () => {
  const body = JSON.stringify({ stream: "/s", events: [{ offset: 1 }] });

  it("new secrets look like whsec_<base64 of 32 bytes> and differ", () => {
    const a = newWebhookSecret();
    const b = newWebhookSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(a).not.toBe(b);
  });

  it("signWebhook produces Standard Webhooks headers that verify with the same secret", () => {
    const secret = newWebhookSecret();
    const headers = signWebhook(secret, "msg_1", body);
    expect(headers["webhook-id"]).toBe("msg_1");
    expect(headers["webhook-timestamp"]).toMatch(/^\d+$/);
    expect(headers["webhook-signature"]).toMatch(/^v1,/);
    expect(verifyWebhook(secret, body, headers)).toEqual(JSON.parse(body));
  });

  it("fails with a wrong secret", () => {
    const headers = signWebhook(newWebhookSecret(), "msg_1", body);
    expect(() => verifyWebhook(newWebhookSecret(), body, headers)).toThrow();
  });

  it("fails on a tampered body, id or timestamp", () => {
    const secret = newWebhookSecret();
    const headers = signWebhook(secret, "msg_1", body);
    expect(() => verifyWebhook(secret, body.replace('"/s"', '"/t"'), headers)).toThrow();
    expect(() => verifyWebhook(secret, body, { ...headers, "webhook-id": "msg_2" })).toThrow();
    const ts = String(Number(headers["webhook-timestamp"]) - 1);
    expect(() => verifyWebhook(secret, body, { ...headers, "webhook-timestamp": ts })).toThrow();
  });

  it("refuses a stale timestamp even with a valid signature", () => {
    const secret = newWebhookSecret();
    const old = new Date(Date.now() - 60 * 60 * 1000);
    const headers = signWebhook(secret, "msg_1", body, old);
    expect(() => verifyWebhook(secret, body, headers)).toThrow();
  });
});
