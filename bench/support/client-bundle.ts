/**
 * The shipped session client (src/client, what the console and web apps use) loaded into a
 * Node benchmark. Its modules use extensionless imports (bundler resolution), which Node's
 * own loader cannot follow, so it is bundled once with esbuild (a root devDependency, as for
 * the browser e2e) and imported from memory: the benchmark then runs the client's code as
 * shipped (`SessionClient.events` → `resumableEvents`), not a re-implementation of it.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

type ClientModule = typeof import("../../src/client/index.ts");

const entry = join(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "src",
  "client",
  "index.ts",
);

export async function loadSessionClient(): Promise<ClientModule> {
  const bundle = await build({
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node22",
    write: false,
    logLevel: "silent",
  });
  const code = bundle.outputFiles[0]!.text;
  return (await import(
    `data:text/javascript;base64,${Buffer.from(code).toString("base64")}`
  )) as ClientModule;
}
