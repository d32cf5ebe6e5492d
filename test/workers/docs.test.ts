/** The API reference at /docs renders from the worker's own files: no CDN, works offline. */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

describe("GET /docs", () => {
  it("serves Scalar's reference over /openapi.json with its script from this worker", async () => {
    const res = await exports.default.fetch("http://local/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    const html = await res.text();
    const scripts = [...html.matchAll(/<script[^>]*\ssrc="([^"]+)"/g)].map((m) => m[1]!);
    expect(scripts).toEqual(["/docs/scalar.js"]);
    expect(html).not.toMatch(/https?:\/\/(cdn|fonts)\./);
    expect(html).toContain("/openapi.json");

    // Workers Assets serves it ahead of the worker (in tests, through the ASSETS binding).
    const script = await env.ASSETS!.fetch("http://local/docs/scalar.js");
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toContain("javascript");
    const body = await script.text();
    expect(body.length).toBeGreaterThan(1_000_000);
    expect(body).toContain("createApiReference");
  });
});
