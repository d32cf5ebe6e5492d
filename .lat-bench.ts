import { startDevServer } from "./test/support/dev-server.ts";
const s = await startDevServer({ migrate: true, vars: { INSECURE_DEFAULT_TENANT: "conformance" } });
try {
  await fetch(`${s.url}/v1/stream/lat`, { method: "PUT", headers: { "content-type": "application/json" } });
  for (let round = 0; round < 3; round++) {
    const t0 = performance.now();
    for (let i = 0; i < 200; i++) {
      const r = await fetch(`${s.url}/v1/stream/lat`, { method: "POST", headers: { "content-type": "application/json" }, body: "[1]" });
      await r.arrayBuffer();
      const g = await fetch(`${s.url}/v1/stream/lat?offset=-1`);
      await g.arrayBuffer();
    }
    console.log(process.cwd(), "round", round, ((performance.now() - t0) / 400).toFixed(2), "ms/req");
  }
} finally {
  await s.stop();
}
