/**
 * Which callables may be used.
 *
 * In-platform targets: the allowlist (CALLABLE_BINDINGS) names methods, not only bindings —
 * `SESSIONS:deliver,AUDIT:receive`. A binding answers far more than its owner's methods (a
 * Durable Object stub answers `toString`, `valueOf`, …; a namespace answers `idFromName`,
 * `get`, …), and calling one of those "succeeds" without any subscriber code running, so
 * only the exact `binding:method` pairs the operator listed are reachable. The setting is
 * parsed with the others in env.ts (`readCallablePolicy`); this module applies the policy.
 *
 * Webhook URLs must be https and must not point at loopback, private, link-local or otherwise
 * internal hosts, unless local development explicitly allows loopback
 * (ALLOW_LOOPBACK_WEBHOOKS=true). What this can promise: every IP literal is judged by its
 * value (addresses.ts parses every IPv4 spelling and IPv6 form, including IPv4-mapped,
 * -compatible and -translated, NAT64, 6to4 and Teredo addresses that embed a private IPv4),
 * and only public unicast literals pass. What it cannot: a host *name* is judged as written,
 * because a Worker cannot see DNS answers before its fetch — `127.0.0.1.nip.io` or a name
 * that later re-binds to a private address passes here. Names that conventionally resolve
 * internally (localhost, *.local, *.internal, single labels) are refused. On Cloudflare, a
 * deployed Worker's outbound `fetch` goes out through Cloudflare's network to the public
 * internet: it cannot reach the private networks of the data centre or RFC 1918 addresses
 * behind it (those need Cloudflare Tunnel / Workers VPC bindings), so a name resolving to a
 * private address reaches nothing there. Under `wrangler dev` / Miniflare, fetch runs on
 * your machine and *can* reach its loopback and LAN: this policy is the only guard there.
 */

import { ipv4Text, parseIpv4, parseIpv6, refusedIpv4, refusedIpv6 } from "./addresses";
import type { Callable } from "./descriptor";
import { CallableError } from "./errors";

export interface CallablePolicy {
  /** binding → the methods callables may call on it. */
  allowedMethods: ReadonlyMap<string, ReadonlySet<string>>;
  allowLoopbackWebhooks: boolean;
}

export function checkCallable(callable: Callable, policy: CallablePolicy): void {
  if (callable.kind === "webhook") {
    checkWebhookUrl(callable.url, policy);
    return;
  }
  const methods = policy.allowedMethods.get(callable.binding);
  if (!methods) {
    throw new CallableError(
      "resolution",
      `binding ${callable.binding} is not on the callable allowlist`,
      false,
    );
  }
  if (!methods.has(callable.method)) {
    throw new CallableError(
      "resolution",
      `method ${callable.method} of ${callable.binding} is not on the callable allowlist (allowed: ${[...methods].join(", ")})`,
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
  if (isInternalName(host)) throw refuse(`${host} is an internal name`);
  const why = privateAddressReason(host);
  if (why) throw refuse(`${host} is not a public address (${why})`);
}

function isLoopback(host: string): boolean {
  if (host === "localhost" || host.endsWith(".localhost")) return true;
  const v4 = parseIpv4(host);
  if (v4 !== null) return v4 >>> 24 === 127;
  const v6 = parseIpv6(host);
  if (v6 === null) return false;
  if (v6.slice(0, 7).every((g) => g === 0) && v6[7] === 1) return true;
  // IPv4-mapped / -compatible loopback (::ffff:127.x.y.z, ::127.x.y.z)
  return (
    v6.slice(0, 5).every((g) => g === 0) &&
    (v6[5] === 0 || v6[5] === 0xffff) &&
    v6[6]! >>> 8 === 127
  );
}

function isInternalName(host: string): boolean {
  if (!host.includes(".") && !host.includes(":")) return true; // single-label names resolve internally
  return [".local", ".internal", ".lan", ".home.arpa", ".intranet", ".corp"].some((s) =>
    host.endsWith(s),
  );
}

/** Why an IP literal is not a public address; null for public ones and for names. */
export function privateAddressReason(host: string): string | null {
  const v6 = host.includes(":") ? parseIpv6(host) : null;
  if (v6) return refusedIpv6(v6);
  if (host.includes(":")) return "an unparseable IPv6 address";
  // Only a host whose last label is numeric is an IPv4 literal (WHATWG URL host parsing).
  const last = host.split(".").at(-1) ?? "";
  if (!/^(0[xX][0-9a-fA-F]*|[0-9]+)$/.test(last)) return null;
  const v4 = parseIpv4(host);
  if (v4 === null) return "an invalid IPv4 address";
  const why = refusedIpv4(v4);
  return why ? `${ipv4Text(v4)} is ${why}` : null;
}
