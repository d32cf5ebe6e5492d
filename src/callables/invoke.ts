/**
 * Calls a callable with a JSON-serialisable payload and returns what the target answered.
 * Every failure comes back as a typed CallableError (see errors.ts); nothing else escapes.
 */
import { durableIdFromName } from "../durable-ids";
import type { Callable } from "./descriptor";
import { CallableError } from "./errors";
import { type CallablePolicy, checkCallable } from "./policy";
import { signWebhook } from "./webhook";

export interface InvokeOptions {
  env: object;
  policy: CallablePolicy;
  /** Webhook signing secret of the subscription. */
  secret?: string | null;
  /** Stable id of this message across retries (webhook-id). */
  messageId: string;
  timeoutMs?: number;
}

function binding(env: object, name: string): object {
  const value: unknown = Object.hasOwn(env, name) ? Reflect.get(env, name) : undefined;
  if (value === undefined || value === null || typeof value !== "object") {
    throw new CallableError("resolution", `binding ${name} does not exist in this worker`, false);
  }
  return value;
}

/** A binding that looks up Durable Objects by name (not a service, not a plain value). */
function isNamespace(target: object): target is DurableObjectNamespace {
  return typeof Reflect.get(target, "idFromName") === "function";
}

async function callMethod(target: object, method: string, payload: unknown): Promise<unknown> {
  const member: unknown = Reflect.get(target, method);
  if (typeof member !== "function") {
    throw new CallableError("resolution", `target has no method ${method}`, false);
  }
  try {
    // Called as a method of `target` (what `target[method](payload)` does). RPC stubs answer
    // every property with a callable stub, so `member.call(...)` would itself be sent as an
    // RPC named "call"; Reflect.apply reads no property of the member.
    return await Reflect.apply(member, target, [payload]);
  } catch (error) {
    const e = error as Error & { retryable?: boolean; remote?: boolean };
    // workerd marks transient infrastructure failures (lost connections, overload) retryable.
    if (e.retryable === true && e.remote !== true)
      throw new CallableError("transport", e.message, true);
    throw new CallableError("remote", e.message ?? String(error), true);
  }
}

/**
 * The binding a durable-object or service callable names, checked to be of that kind: a
 * service callable on a Durable Object namespace would reach the namespace's own methods
 * (idFromName, get, …), never subscriber code. Used at configuration and at every call.
 */
export function resolveTarget(
  callable: Extract<Callable, { kind: "durable-object" | "service" }>,
  env: object,
): object {
  const target = binding(env, callable.binding);
  if (callable.kind === "durable-object" && !isNamespace(target)) {
    throw new CallableError(
      "resolution",
      `binding ${callable.binding} is not a Durable Object namespace`,
      false,
    );
  }
  if (callable.kind === "service" && isNamespace(target)) {
    throw new CallableError(
      "resolution",
      `binding ${callable.binding} is a Durable Object namespace; use kind "durable-object"`,
      false,
    );
  }
  return target;
}

export async function invokeCallable(
  callable: Callable,
  payload: unknown,
  options: InvokeOptions,
): Promise<unknown> {
  checkCallable(callable, options.policy);
  switch (callable.kind) {
    case "durable-object": {
      const ns = resolveTarget(callable, options.env);
      // Already refused by resolveTarget; checked again so that `ns` is typed a namespace.
      if (!isNamespace(ns)) {
        throw new CallableError(
          "resolution",
          `binding ${callable.binding} is not a namespace`,
          false,
        );
      }
      return callMethod(ns.get(durableIdFromName(ns, callable.name)), callable.method, payload);
    }
    case "service":
      return callMethod(resolveTarget(callable, options.env), callable.method, payload);
    case "webhook":
      return postWebhook(callable.url, payload, options);
  }
}

async function postWebhook(
  url: string,
  payload: unknown,
  options: InvokeOptions,
): Promise<unknown> {
  const body = JSON.stringify(payload);
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (options.secret) Object.assign(headers, signWebhook(options.secret, options.messageId, body));
  let response: Response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers,
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    });
  } catch (error) {
    throw new CallableError(
      "transport",
      `POST ${new URL(url).host} failed: ${(error as Error).message}`,
      true,
    );
  }
  const text = await response.text().catch(() => "");
  if (!response.ok) {
    const retryable = response.status === 408 || response.status === 429 || response.status >= 500;
    throw new CallableError(
      "remote",
      `webhook answered ${response.status}: ${text.slice(0, 200)}`,
      retryable,
    );
  }
  return webhookAck(text, (payload as { nextOffset: number }).nextOffset - 1);
}

/**
 * The webhook contract (public API): a 2xx with an empty body acknowledges the whole batch;
 * a 2xx with a body must be JSON `{ "ackOffset": <integer ≥ 0> }`. Anything else (an HTML
 * page from a proxy, `OK`, `{}`) is not an acknowledgement and fails the delivery, so a
 * misrouted webhook never silently swallows events.
 */
export function webhookAck(text: string, through: number): { ackOffset: number } {
  if (text.trim() === "") return { ackOffset: through };
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const ack = (body as { ackOffset?: unknown } | null | undefined)?.ackOffset;
  if (
    body === null ||
    typeof body !== "object" ||
    typeof ack !== "number" ||
    !Number.isSafeInteger(ack) ||
    ack < 0
  ) {
    throw new CallableError(
      "remote",
      `webhook answer is not an acknowledgement (expected an empty body or {"ackOffset": n}): ${text.slice(0, 200)}`,
      false,
    );
  }
  return { ackOffset: ack };
}
