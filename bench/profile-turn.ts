/**
 * `npm run bench:profile`: a V8 CPU profile of workerd during a burst of turns. Starts
 * `wrangler dev` with its inspector on a free port, connects over the Chrome DevTools
 * protocol (Node's global WebSocket), runs a few warm-up turns on one session, then profiles
 * `PROFILE_TURNS` (default 30) sequential turns (POST message, wait for `turn/completed` on
 * the open SSE stream). Prints the top self-time and inclusive-time functions per turn and
 * saves the `.cpuprofile` (open it in Chrome DevTools) under bench/results/. Loopback only,
 * bounded, exits by itself.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, startDevServer } from "../test/support/dev-server.ts";
import { openSse, postJson as post } from "./support/session-http.ts";

const here = dirname(fileURLToPath(import.meta.url));
const TURNS = Number(process.env.PROFILE_TURNS ?? 30);
const WARMUP = 5;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

function cdp(wsUrl: string) {
  // The inspector proxy wants an Origin it knows (Node's WebSocket sends none by default).
  const ws = new WebSocket(wsUrl, {
    headers: { origin: "http://127.0.0.1" },
  } as unknown as string[]);
  let id = 0;
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let failure: Error | null = null;
  const fail = (error: Error) => {
    failure ??= error;
    for (const p of pending.values()) p.reject(failure);
    pending.clear();
  };
  ws.addEventListener("message", (e) => {
    const msg = JSON.parse(String(e.data)) as { id?: number; result?: unknown; error?: unknown };
    if (msg.id === undefined) return;
    const waiter = pending.get(msg.id);
    pending.delete(msg.id);
    if (msg.error) waiter?.reject(new Error(`inspector: ${JSON.stringify(msg.error)}`));
    else waiter?.resolve(msg.result);
  });
  const opened = new Promise<void>((resolve, reject) => {
    ws.addEventListener("open", () => resolve());
    ws.addEventListener("error", () => {
      const error = new Error(`inspector connection to ${wsUrl} failed`);
      fail(error);
      reject(error);
    });
    ws.addEventListener("close", () => fail(new Error("inspector connection closed")));
  });
  return {
    send: async <T = unknown>(method: string, params: object = {}): Promise<T> => {
      await opened;
      if (failure) throw failure;
      const n = ++id;
      const p = new Promise<unknown>((resolve, reject) => pending.set(n, { resolve, reject }));
      ws.send(JSON.stringify({ id: n, method, params }));
      return p as Promise<T>;
    },
    close: () => ws.close(),
  };
}

function summarise(profile: Profile, turns: number) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0));
  }
  const key = (n: ProfileNode) => {
    const f = n.callFrame;
    const file = f.url.split("/").slice(-2).join("/");
    return `${f.functionName || "(anon)"} ${file}:${f.lineNumber + 1}`;
  };
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    self.set(key(node), (self.get(key(node)) ?? 0) + us);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = key(byId.get(cur)!);
      if (seen.has(k)) continue;
      seen.add(k);
      incl.set(k, (incl.get(k) ?? 0) + us);
    }
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const idle = self.get("(idle) :0") ?? 0;
  const top = (m: Map<string, number>, n: number) =>
    [...m]
      .filter(([k]) => !k.startsWith("(idle)") && !k.startsWith("(root)"))
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, us]) => `  ${(us / 1000 / turns).toFixed(2).padStart(7)} ms/turn  ${k}`)
      .join("\n");
  console.log(
    `profiled ${turns} turns: ${(total / 1000 / turns).toFixed(1)} ms wall/turn, non-idle ${((total - idle) / 1000 / turns).toFixed(1)} ms/turn`,
  );
  console.log(`\ntop self time:\n${top(self, 40)}`);
  console.log(`\ntop inclusive time:\n${top(incl, 60)}`);
}

async function main() {
  const inspector = await freePort();
  const server = await startDevServer({
    migrate: true,
    inspectorPort: inspector,
    vars: { SCRIPTED_MODEL_DELAY_MS: "0" },
  });
  const guard = setTimeout(() => {
    console.error("bench:profile exceeded its time limit");
    void server.stop("SIGKILL").then(() => process.exit(1));
  }, 240_000);
  try {
    const targets = (await (await fetch(`http://127.0.0.1:${inspector}/json`)).json()) as {
      webSocketDebuggerUrl: string;
      title?: string;
    }[];
    console.log(
      "inspector targets:",
      targets.map((t) => t.title ?? t.webSocketDebuggerUrl).join(", "),
    );
    const target = targets.find((t) => !/internal|proxy/i.test(t.title ?? "")) ?? targets[0]!;
    const client = cdp(target.webSocketDebuggerUrl);
    await client.send("Profiler.enable");
    await client.send("Profiler.setSamplingInterval", { interval: 200 });
    const base = server.url;
    const { session } = (await (await post(base, "/v1/sessions", { title: "profile" })).json()) as {
      session: { id: string };
    };
    let onCompleted: (() => void) | null = null;
    const sse = await openSse(
      `${base}/v1/sessions/${session.id}/events`,
      { accept: "text/event-stream" },
      (_e, data) => {
        if ((JSON.parse(data) as { type: string }).type === "turn/completed") onCompleted?.();
      },
    );
    const turn = async (i: number) => {
      const done = new Promise<void>((r) => (onCompleted = r));
      await (
        await post(base, `/v1/sessions/${session.id}/messages`, { content: `profile ${i}` })
      ).body?.cancel();
      await done;
    };
    for (let i = 0; i < WARMUP; i++) await turn(i);
    await client.send("Profiler.start");
    const started = Date.now();
    for (let i = 0; i < TURNS; i++) await turn(WARMUP + i);
    const wall = Date.now() - started;
    const { profile } = await client.send<{ profile: Profile }>("Profiler.stop");
    console.log(`${TURNS} turns in ${wall} ms (${(wall / TURNS).toFixed(1)} ms/turn, client view)`);
    mkdirSync(join(here, "results"), { recursive: true });
    const file = join(here, "results", "turns.cpuprofile");
    writeFileSync(file, JSON.stringify(profile));
    summarise(profile, TURNS);
    console.log(`\nsaved ${file}`);
    client.close();
    await sse.close();
  } finally {
    clearTimeout(guard);
    await server.stop();
  }
}

await main();
