/**
 * Starts the real app with `wrangler dev` on a free loopback port, for the conformance run,
 * end-to-end tests and benchmarks. Runs on Node (not inside workerd). The server's state
 * lives in `persistDir`, so a test can kill it (SIGKILL) and start it again on the same data.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface DevServer {
  url: string;
  port: number;
  persistDir: string;
  child: ChildProcess;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface DevServerOptions {
  vars?: Record<string, string>;
  persistDir?: string;
  port?: number;
  /** Apply local D1 migrations first (as `npm run dev` does). */
  migrate?: boolean;
  /** Path of the wrangler config to use (default: `wrangler.toml` in the working directory). */
  config?: string;
  /** Port for workerd's V8 inspector (Chrome DevTools protocol), e.g. for CPU profiles. */
  inspectorPort?: number;
}

/** Signals wrangler and everything it started (workerd); a SIGKILL is a real crash. */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address === null || typeof address === "string") return reject(new Error("no port"));
      server.close(() => resolve(address.port));
    });
  });
}

const wrangler = join(process.cwd(), "node_modules", ".bin", "wrangler");
const quietEnv = { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true", NO_COLOR: "1" };

function run(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(wrangler, args, { env: quietEnv, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`wrangler ${args.join(" ")} failed:\n${output}`)),
    );
  });
}

export async function startDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  const persistDir = options.persistDir ?? mkdtempSync(join(tmpdir(), "das-dev-"));
  const configArgs = options.config ? ["--config", options.config] : [];
  if (options.migrate) {
    await run([
      "d1",
      "migrations",
      "apply",
      "DB",
      "--local",
      "--persist-to",
      persistDir,
      ...configArgs,
    ]);
  }
  const port = options.port ?? (await freePort());
  const args = [
    "dev",
    "--ip",
    "127.0.0.1",
    "--port",
    String(port),
    "--persist-to",
    persistDir,
    "--show-interactive-dev-session=false",
    ...configArgs,
    ...(options.inspectorPort ? ["--inspector-port", String(options.inspectorPort)] : []),
  ];
  for (const [key, value] of Object.entries(options.vars ?? {}))
    args.push("--var", `${key}:${value}`);
  const child = spawn(wrangler, args, {
    env: quietEnv,
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group, so that stopping it also stops the workerd it spawned.
    detached: true,
  });
  let log = "";
  child.stdout?.on("data", (d) => (log += d));
  child.stderr?.on("data", (d) => (log += d));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`wrangler dev exited (${child.exitCode}):\n${log}`);
    try {
      const res = await fetch(`${url}/healthz`);
      await res.body?.cancel();
      if (res.status < 500) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      killGroup(child, "SIGKILL");
      throw new Error(`wrangler dev did not start within 60s:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    port,
    persistDir,
    child,
    stop: (signal = "SIGTERM") =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        killGroup(child, signal);
        setTimeout(() => killGroup(child, "SIGKILL"), 5_000).unref();
      }),
  };
}
