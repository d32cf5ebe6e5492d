/**
 * Builds the web console (`npm run build`: Vite → public/console, served by wrangler at
 * /console/). The build output is not committed: the e2e suite builds it before its tests.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

export const CONSOLE_DIR = join(process.cwd(), "public", "console");

let building: Promise<void> | undefined;

/** Builds the console (always with `force`; otherwise only when no build exists). */
export function buildConsole(options: { force?: boolean } = {}): Promise<void> {
  if (!options.force && existsSync(join(CONSOLE_DIR, "index.html"))) return Promise.resolve();
  building ??= new Promise<void>((resolve, reject) => {
    const vite = join(process.cwd(), "node_modules", ".bin", "vite");
    const child = spawn(vite, ["build", "--config", "console/vite.config.ts"], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1" },
    });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`console build failed (${code}):\n${output}`)),
    );
  }).finally(() => {
    building = undefined;
  });
  return building;
}
