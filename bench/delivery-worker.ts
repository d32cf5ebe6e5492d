/**
 * Bench-only worker for `npm run bench:delivery`: the production worker plus a subscriber
 * Durable Object whose processor records when each event reaches `processEvent`, and a
 * driver Durable Object that runs the measurements inside workerd (one clock, no HTTP in the
 * measured path). Never deployed.
 */

import { DurableObject } from "cloudflare:workers";
import { z } from "zod";
import type { Env as AppEnv } from "../src/env";
import app from "../src/index";
import { defineContract } from "../src/processors/contract";
import { ProcessorHost } from "../src/processors/host";
import { type EventHookArgs, StreamProcessor } from "../src/processors/processor";
import { rpcClient } from "../src/rpc/result";
import { processorStreams } from "../src/sessions/stream-access";
import type { DeliveryBatch } from "../src/streams/delivery";

export { SessionAgent } from "../src/sessions/session-agent";
export { StreamDurableObject } from "../src/stream-object";

import { streamStub } from "../src/streams/stub";

type Env = AppEnv & {
  BENCH_SUBSCRIBERS: DurableObjectNamespace<BenchSubscriber>;
  BENCH_DRIVER: DurableObjectNamespace<BenchDriver>;
};

const probeContract = defineContract({
  name: "probe",
  version: 1,
  events: { "bench/probed": z.object({ sentAt: z.number(), ack: z.string().nullable() }) },
  consumes: ["bench/probed"],
  emits: [],
  state: z.object({ count: z.number().int() }),
  initialState: { count: 0 },
});

class ProbeProcessor extends StreamProcessor<typeof probeContract> {
  readonly contract = probeContract;
  constructor(private readonly seen: (offset: number, sentAt: number, ack: string | null) => void) {
    super();
  }
  reduce({ state }: { state: { count: number } }) {
    return { count: state.count + 1 };
  }
  override processEvent({ event }: EventHookArgs<typeof probeContract>) {
    this.seen(event.offset, event.payload.sentAt, event.payload.ack);
  }
}

export class BenchSubscriber extends DurableObject<Env> {
  host = new ProcessorHost(this.ctx, processorStreams(this.env.STREAMS), {
    binding: "BENCH_SUBSCRIBERS",
  });
  latencies: number[] = [];
  deliveries = 0;
  probe = this.host.register(
    "probe",
    new ProbeProcessor((_offset, sentAt, ack) => {
      this.latencies.push(Date.now() - sentAt);
      if (ack)
        this.ctx.waitUntil(this.env.BENCH_DRIVER.get(this.env.BENCH_DRIVER.idFromName(ack)).ack());
    }),
  );

  deliver(batch: DeliveryBatch) {
    this.deliveries += 1;
    return this.host.deliver(batch);
  }
  subscribe(streamName: string, hostName: string) {
    return this.host.subscribe("probe", { streamName, hostName, startAt: "beginning" });
  }
  ping(): number {
    return Date.now();
  }
  stats() {
    return {
      latencies: this.latencies,
      deliveries: this.deliveries,
      checkpoint: this.host.snapshot("probe").checkpoint,
    };
  }
}

const pct = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
};
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);

export class BenchDriver extends DurableObject<Env> {
  #acked: (() => void) | null = null;

  ack() {
    this.#acked?.();
  }

  #stream(name: string) {
    return rpcClient(streamStub(this.env, name));
  }

  async #setup(run: string, subscribers: number) {
    const name = `bench:/delivery/${run}`;
    const stream = this.#stream(name);
    await stream.create(name, `/delivery/${run}`);
    const subs = [];
    for (let i = 0; i < subscribers; i++) {
      const hostName = `${run}-sub-${i}`;
      const sub = this.env.BENCH_SUBSCRIBERS.get(this.env.BENCH_SUBSCRIBERS.idFromName(hostName));
      await sub.subscribe(name, hostName);
      subs.push(sub);
    }
    return { name, stream, subs };
  }

  /** One subscriber: append one event at a time, wait for processEvent to see it. */
  async latency(run: string, rounds: number, self: string) {
    const { stream, subs } = await this.#setup(run, 1);
    const sub = subs[0]!;
    const rpc: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const start = Date.now();
      await sub.ping();
      rpc.push(Date.now() - start);
    }
    for (let i = 0; i < rounds; i++) {
      const acked = new Promise<void>((resolve) => {
        this.#acked = resolve;
      });
      await stream.append({ type: "bench/probed", payload: { sentAt: Date.now(), ack: self } });
      await acked;
    }
    const { latencies } = await sub.stats();
    return { rpc, latencies };
  }

  /** Many events to N subscribers as fast as they go: delivered events/s and calls per event. */
  async throughput(run: string, subscribers: number, events: number) {
    const { stream, subs } = await this.#setup(run, subscribers);
    const start = Date.now();
    for (let sent = 0; sent < events; sent += 100) {
      await stream.appendBatch(
        Array.from({ length: Math.min(100, events - sent) }, () => ({
          type: "bench/probed",
          payload: { sentAt: Date.now(), ack: null },
        })),
      );
    }
    const tail = (await stream.head()).lastOffset;
    let stats: Awaited<ReturnType<BenchSubscriber["stats"]>>[] = [];
    for (;;) {
      stats = await Promise.all(subs.map((s) => s.stats()));
      if (stats.every((s) => s.checkpoint >= tail)) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    const elapsed = Math.max(1, Date.now() - start);
    const delivered = events * subscribers;
    const calls = stats.reduce((n, s) => n + s.deliveries, 0);
    return {
      subscribers,
      events,
      elapsedMs: elapsed,
      deliveredPerSecond: (delivered / elapsed) * 1000,
      rpcCallsPerEvent: calls / delivered,
    };
  }

  /** `self` is this driver's own name: subscribers acknowledge each probe to it. */
  async run(self: string, rounds: number, events: number) {
    const id = `r${Date.now()}`;
    const { rpc, latencies } = await this.latency(`${id}-lat`, rounds, self);
    const one = await this.throughput(`${id}-t1`, 1, events);
    const ten = await this.throughput(`${id}-t10`, 10, events);
    return {
      rounds,
      rpcRoundTripMs: { p50: pct(rpc, 50), p99: pct(rpc, 99), mean: mean(rpc) },
      appendToProcessEventMs: {
        p50: pct(latencies, 50),
        p99: pct(latencies, 99),
        mean: mean(latencies),
      },
      throughput: [one, ten],
    };
  }
}

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/bench/delivery") {
      const name = `driver-${Date.now()}`;
      const driver = env.BENCH_DRIVER.get(env.BENCH_DRIVER.idFromName(name));
      const result = await driver.run(
        name,
        Number(url.searchParams.get("rounds") ?? 200),
        Number(url.searchParams.get("events") ?? 2000),
      );
      return Response.json(result);
    }
    return app.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Env>;
