/**
 * Durable Object RPC methods answer result envelopes (src/rpc/result.ts). Tests call them
 * through `rpcClient(stub)`, which unwraps each answer (the value, or a thrown DomainError);
 * the cloudflare:test helpers below accept such a client as well as a raw stub.
 */
import * as cf from "cloudflare:test";
import { rawStub, rpcClient } from "../../src/rpc/result";

export { rawStub, rpcClient };

type Stub = Parameters<typeof cf.runDurableObjectAlarm>[0];

export const runDurableObjectAlarm = (stub: object) =>
  cf.runDurableObjectAlarm(rawStub(stub) as Stub);

export const evictDurableObject = (stub: object) => cf.evictDurableObject(rawStub(stub) as Stub);

export function runInDurableObject<R>(
  stub: object,
  // biome-ignore lint/suspicious/noExplicitAny: the instance type is the test's to declare
  callback: (instance: any, state: DurableObjectState) => R | Promise<R>,
): Promise<R> {
  return cf.runInDurableObject<DurableObject, R>(rawStub(stub) as Stub, callback);
}
