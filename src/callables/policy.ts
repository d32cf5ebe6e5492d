/**
 * Which callables may be used. Bindings must be on the configured allowlist; webhook URLs must
 * be https and must not point at loopback, private, link-local or otherwise internal hosts,
 * unless local development explicitly allows loopback (ALLOW_LOOPBACK_WEBHOOKS=true).
 * Hostnames are checked as written: DNS answers are not visible from a Worker, which is why
 * names that conventionally resolve internally (localhost, *.local, *.internal) are refused.
 */

import type { Callable } from "./descriptor";
import { CallableError } from "./errors";

export interface CallablePolicy {
  allowedBindings: ReadonlySet<string>;
  allowLoopbackWebhooks: boolean;
}

export function checkCallable(callable: Callable, policy: CallablePolicy): void {
  if (callable.kind === "webhook") {
    checkWebhookUrl(callable.url, policy);
    return;
  }
  if (!policy.allowedBindings.has(callable.binding)) {
    throw new CallableError(
      "resolution",
      `binding ${callable.binding} is not on the callable allowlist`,
      false,
    );
  }
}

const refuse = (reason: string) =>
  new CallableError("resolution", `webhook URL refused: ${reason}`, false);

export function checkWebhookUrl(raw: string, policy: CallablePolicy): void {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CallableError("validation", "webhook URL is not a URL", false);
  }
  if (url.username || url.password) throw refuse("credentials in the URL are not allowed");
  // A trailing dot names the same host (`localhost.` is localhost): drop it before checking.
  const host = url.hostname
    .toLowerCase()
    .replace(/^\[|\]$/g, "")
    .replace(/\.+$/, "");
  const loopback = isLoopback(host);
  if (loopback && policy.allowLoopbackWebhooks) {
    if (url.protocol !== "https:" && url.protocol !== "http:") throw refuse("only http(s)");
    return;
  }
  if (url.protocol !== "https:") throw refuse("only https URLs are allowed");
  if (loopback) throw refuse("loopback addresses are not allowed");
  if (isInternalName(host) || isPrivateAddress(host))
    throw refuse(`${host} is a private or internal address`);
}

function isLoopback(host: string): boolean {
  return (
    host === "localhost" ||
    host.endsWith(".localhost") ||
    host === "::1" ||
    /^127\.\d+\.\d+\.\d+$/.test(host)
  );
}

function isInternalName(host: string): boolean {
  if (!host.includes(".") && !host.includes(":")) return true; // single-label names resolve internally
  return [".local", ".internal", ".lan", ".home.arpa", ".intranet", ".corp"].some((s) =>
    host.endsWith(s),
  );
}

function isPrivateAddress(host: string): boolean {
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(host);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    return (
      a === 0 ||
      a === 10 ||
      a === 127 ||
      (a === 100 && b >= 64 && b <= 127) ||
      (a === 169 && b === 254) ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      (a === 198 && (b === 18 || b === 19)) ||
      a >= 224
    );
  }
  if (host.includes(":")) {
    return (
      host === "::" || /^f[cd]/.test(host) || /^fe[89ab]/.test(host) || host.startsWith("::ffff:")
    );
  }
  return false;
}

export function readPolicy(env: {
  CALLABLE_BINDINGS?: string;
  ALLOW_LOOPBACK_WEBHOOKS?: string;
}): CallablePolicy {
  return {
    allowedBindings: new Set(
      (env.CALLABLE_BINDINGS ?? "")
        .split(",")
        .map((b) => b.trim())
        .filter(Boolean),
    ),
    allowLoopbackWebhooks: env.ALLOW_LOOPBACK_WEBHOOKS === "true",
  };
}
