/**
 * Stubs for the test-only Durable Objects of test/fixtures/worker.ts: TestHost (a processor
 * host with the counter, gate, ledger… processors of test/fixtures/processors.ts) and
 * TestSubscriber (records every batch, fails on demand). Their method types come from the
 * fixture classes, so they are declared once; `State` types a processor snapshot's state for
 * the test at hand. Each `new…` helper names a fresh object, since storage is shared by every
 * test of a file.
 */
import { env } from "cloudflare:workers";
import type { StartAt } from "../../src/streams/system-events";
import type { TestHost, TestSubscriber } from "../fixtures/worker";

/**
 * A test-only binding typed by the stub it answers (test/support/workers-env.d.ts declares
 * TEST_HOSTS and TEST_SUBSCRIBERS so). Not `DurableObjectNamespace<TestSubscriber>`: its
 * generated stub maps answers that carry events through workerd's `Rpc` types, which tsc
 * gives up on (TS2589); see src/sessions/agent-rpc.ts.
 */
export interface FixtureNamespace<Stub> {
  idFromName(name: string): DurableObjectId;
  get(id: DurableObjectId): Stub;
}

/** A short random suffix for object and stream names. */
export const uid = () => crypto.randomUUID().slice(0, 8);

/** The named methods of `T` as an RPC stub offers them: each answers a promise. */
type RpcMethods<T, K extends keyof T> = {
  [P in K]: T[P] extends (...args: infer A) => infer R
    ? (...args: A) => Promise<Awaited<R>>
    : never;
};

// biome-ignore lint/suspicious/noExplicitAny: each test types the state of its processors
export interface HostStub<State = any>
  extends DurableObjectStub,
    RpcMethods<
      TestHost,
      | "deliver"
      | "deliverTo"
      | "effects"
      | "subscribe"
      | "releaseGate"
      | "rejectGate"
      | "failNext"
      | "ledgerEntries"
      | "writeStoredState"
      | "resetProcessor"
      | "waitForCheckpoint"
    > {
  snapshot(name: string): Promise<{ state: State; checkpoint: number }>;
}

export interface SubscriberStub
  extends DurableObjectStub,
    RpcMethods<TestSubscriber, "failNext" | "batches"> {}

/** The TestHost named `name`. */
// biome-ignore lint/suspicious/noExplicitAny: see HostStub
export function hostStub<State = any>(name: string): HostStub<State> {
  return env.TEST_HOSTS.get(env.TEST_HOSTS.idFromName(name));
}

/** A fresh TestHost. */
// biome-ignore lint/suspicious/noExplicitAny: see HostStub
export function newHost<State = any>(label: string) {
  const name = `${label}-${uid()}`;
  return { name, stub: hostStub<State>(name) };
}

/** The TestSubscriber named `name`. */
export function subscriberStub(name: string): SubscriberStub {
  return env.TEST_SUBSCRIBERS.get(env.TEST_SUBSCRIBERS.idFromName(name));
}

/** A fresh TestSubscriber. */
export function newSubscriber(label: string) {
  const name = `${label}-${uid()}`;
  return { name, stub: subscriberStub(name) };
}

/**
 * Subscribes the TestSubscriber named `subscriber` (method `receive`) to a stream under the
 * key `raw/<subscriber>`; `startAt` is left to the stream's default when not given.
 */
export async function subscribeRecorder(
  stream: {
    configureSubscription(input: {
      key: string;
      callable: { kind: "durable-object"; binding: string; name: string; method: string };
      eventTypes: string[];
      startAt?: StartAt;
    }): Promise<{ created: boolean }>;
  },
  subscriber: string,
  eventTypes: string[],
  startAt?: StartAt,
): Promise<{ key: string; created: boolean }> {
  const key = `raw/${subscriber}`;
  const { created } = await stream.configureSubscription({
    key,
    callable: {
      kind: "durable-object",
      binding: "TEST_SUBSCRIBERS",
      name: subscriber,
      method: "receive",
    },
    eventTypes,
    ...(startAt === undefined ? {} : { startAt }),
  });
  return { key, created };
}

/**
 * The error a call rejects with. (Not `expect(p).rejects`: an RPC promise is also callable,
 * and vitest calls a callable as a function, which starts another RPC that nobody awaits.)
 */
export async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected the call to reject");
}
