/**
 * Turn tracing, for finding where a turn's time goes (`npm run bench:trace`). With the var
 * `TRACE_TURNS=true`, each hop a turn passes (worker route, SessionAgent, Stream DO commit,
 * delivery out and back, each processor's batch and appends, SSE write and flush) logs one
 * JSON line `{"trace":"<hop>","t":<Date.now()>,…fields}`, keyed by stream path and offsets,
 * which the bench script joins across Durable Objects. Off (the default), a hop costs one property
 * read: the fields are built by a callback that is then never called.
 *
 * Timestamps are workerd's `Date.now()`, which only advances on I/O: a hop's time is that of
 * the I/O event that started the code running, so pure compute between two I/O points reads
 * as zero and shows up in the next hop instead. Hops in different Durable Objects share the
 * process clock under `wrangler dev`, so their times compare.
 */
import { env } from "cloudflare:workers";

export type TraceFields = Record<string, unknown>;

/** Whether turn tracing is on (the `TRACE_TURNS` var is `"true"`). */
export function tracing(): boolean {
  return (env as { TRACE_TURNS?: unknown }).TRACE_TURNS === "true";
}

/** Logs one hop of a turn when tracing is on; `fields` is only called then. */
export function trace(hop: string, fields: () => TraceFields): void {
  if (!tracing()) return;
  console.log(JSON.stringify({ trace: hop, t: Date.now(), ...fields() }));
}
