/**
 * `npm run bench:delivery`: starts `wrangler dev` on bench/delivery.wrangler.toml (the
 * production worker plus a subscriber and a driver Durable Object) and prints, from one run:
 * - append → processEvent latency p50/p99 for a Durable Object subscriber, against a plain
 *   DO→DO RPC round trip measured in the same run (ratio; the aim is ≤ 3);
 * - delivered events/s to 1 and to 10 subscribers;
 * - RPC calls per delivered event (batching).
 * The measurements run inside workerd (bench/delivery-worker.ts), whose clock advances in
 * whole milliseconds across I/O: sub-millisecond steps read as 0 or 1 ms, so means are
 * printed next to the percentiles. Node 22 (type stripping); loopback only; bounded in time.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startDevServer } from "../test/support/dev-server.ts";

const here = dirname(fileURLToPath(import.meta.url));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 200);
const EVENTS = Number(process.env.BENCH_EVENTS ?? 2000);

interface Throughput {
  subscribers: number;
  events: number;
  elapsedMs: number;
  deliveredPerSecond: number;
  rpcCallsPerEvent: number;
}
interface Result {
  rounds: number;
  rpcRoundTripMs: { p50: number; p99: number; mean: number };
  appendToProcessEventMs: { p50: number; p99: number; mean: number };
  throughput: Throughput[];
}

const server = await startDevServer({
  config: join(here, "delivery.wrangler.toml"),
  migrate: true,
});
const guard = setTimeout(() => {
  console.error("bench:delivery exceeded its time limit");
  void server.stop("SIGKILL").then(() => process.exit(1));
}, 240_000);
try {
  // A short warm-up run, then the measured one.
  await (await fetch(`${server.url}/bench/delivery?rounds=20&events=200`)).text();
  const res = await fetch(`${server.url}/bench/delivery?rounds=${ROUNDS}&events=${EVENTS}`);
  if (res.status !== 200)
    throw new Error(`bench route answered ${res.status}: ${await res.text()}`);
  const result = (await res.json()) as Result;
  const f = (n: number) => n.toFixed(2);
  const { rpcRoundTripMs: rpc, appendToProcessEventMs: lat } = result;
  console.log(
    `\nbench:delivery (wrangler dev, ${ROUNDS} rounds, ${EVENTS} events per throughput run)`,
  );
  console.log(
    `  DO→DO RPC round trip        p50 ${rpc.p50} ms  p99 ${rpc.p99} ms  mean ${f(rpc.mean)} ms`,
  );
  console.log(
    `  append → processEvent       p50 ${lat.p50} ms  p99 ${lat.p99} ms  mean ${f(lat.mean)} ms`,
  );
  console.log(`  ratio (mean)                ${f(lat.mean / Math.max(rpc.mean, 0.001))}`);
  for (const t of result.throughput) {
    console.log(
      `  ${String(t.subscribers).padStart(2)} subscriber(s): ${t.deliveredPerSecond.toFixed(0)} delivered events/s, ${f(t.rpcCallsPerEvent)} RPC calls per delivered event`,
    );
  }
  mkdirSync(join(here, "results"), { recursive: true });
  writeFileSync(join(here, "results", "delivery.json"), `${JSON.stringify(result, null, 2)}\n`);
} finally {
  clearTimeout(guard);
  await server.stop();
}
