/**
 * Webhook signing per the Standard Webhooks scheme (webhook-id, webhook-timestamp,
 * webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">), using the
 * `standardwebhooks` library. Each subscription gets its own secret (`whsec_…`), shown once.
 */
import { Webhook } from "standardwebhooks";

export function newWebhookSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return `whsec_${btoa(String.fromCharCode(...bytes))}`;
}

export function signWebhook(
  secret: string,
  id: string,
  body: string,
  at = new Date(),
): Record<string, string> {
  const signature = new Webhook(secret).sign(id, at, body);
  return {
    "webhook-id": id,
    "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
    "webhook-signature": signature,
  };
}

/** Verifies a delivery (for receivers and tests); throws when the signature does not match. */
export function verifyWebhook(
  secret: string,
  body: string,
  headers: Record<string, string>,
): unknown {
  return new Webhook(secret).verify(body, headers);
}
