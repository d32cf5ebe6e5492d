/**
 * What one warm turn costs, counted (not timed): the Stream DO commits it takes, the
 * deliveries the stream makes back to the SessionAgent, and the SQL statements each object
 * runs. Counts are deterministic, so they can guard the work per turn against creeping back
 * (issue 10) where a timing could only flake. The scripted model replies at once here, so the
 * reply is one append (DeltaWriter), and what the agent owes because of the message and of the
 * reply goes out in the same commits (processors/fused-appends.ts). The bounds leave a little
 * headroom for harmless change (an alarm that happens to fire during the turn). At 81beec4 the
 * same turn took 5 commits, 9 deliveries back, and 101 (SessionAgent) + 81 (Stream DO)
 * statements; now 2, 0, 22 + 29 to 32 (the Stream DO's count depends on whether the last
 * acknowledgements ride on an append or go in a report of their own).
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ProcessorHost } from "../../src/processors/host";
import type { DeliveryBatch } from "../../src/streams/delivery";
import { streamStub } from "../../src/streams/stub";
import { runInDurableObject } from "../support/rpc";
import { createSession, sendMessage, sessionAgent, settledSession } from "../support/session-api";
import { streamClient } from "../support/streams";
import { waitFor } from "../support/wait";

interface Counts {
  appends: number;
  deliveries: number;
  agentSql: number;
  streamSql: number;
}

/** Counts SQL statements run through `state.storage.sql.exec` from now on. */
function countSql(state: DurableObjectState, onStatement: () => void): void {
  const sql = state.storage.sql;
  const exec = sql.exec.bind(sql);
  sql.exec = ((query: string, ...bindings: unknown[]) => {
    onStatement();
    return exec(query, ...bindings);
  }) as typeof sql.exec;
}

async function instrument(id: string): Promise<Counts> {
  const counts: Counts = { appends: 0, deliveries: 0, agentSql: 0, streamSql: 0 };
  await runInDurableObject(
    sessionAgent(id),
    (instance: { host: ProcessorHost }, state: DurableObjectState) => {
      countSql(state, () => counts.agentSql++);
      const host = instance.host;
      const deliver = host.deliver.bind(host);
      host.deliver = (batch: DeliveryBatch) => {
        counts.deliveries++;
        return deliver(batch);
      };
      // Every append the SessionAgent or its processors make goes through here.
      const appendFeeding = host.appendFeeding.bind(host);
      host.appendFeeding = (...args: Parameters<ProcessorHost["appendFeeding"]>) => {
        counts.appends++;
        return appendFeeding(...args);
      };
    },
  );
  await runInDurableObject(
    streamStub(env, `default:/sessions/${id}`),
    (_instance: unknown, state: DurableObjectState) => {
      countSql(state, () => counts.streamSql++);
    },
  );
  return counts;
}

const caughtUp = (id: string) => async () =>
  (await streamClient(`default:/sessions/${id}`).listSubscriptions()).every(
    (s) => s.status === "active" && s.lag === 0,
  );

describe("the cost of a warm turn", () => {
  it("is two commits, no delivery back to the SessionAgent, and a bounded number of SQL statements", async () => {
    const id = await createSession();
    for (let turn = 1; turn <= 2; turn++) {
      await sendMessage(id, `warm up ${turn}`);
      await settledSession(id, turn * 2);
    }
    await waitFor(caughtUp(id));
    const counts = await instrument(id);
    await sendMessage(id, "how much does this cost");
    await settledSession(id, 6);
    await waitFor(caughtUp(id));
    const seen = JSON.stringify(counts);
    // input + turn/started + request-requested; the whole reply + turn/completed.
    expect(counts.appends, seen).toBe(2);
    expect(counts.deliveries, seen).toBe(0);
    expect(counts.agentSql, seen).toBeLessThanOrEqual(28);
    expect(counts.streamSql, seen).toBeLessThanOrEqual(40);
  });
});
