/**
 * The session routes' request and response types reach an `hc` client (typed from the routes,
 * not copied): checked by the type checker (`npm run typecheck`) and exercised at run time
 * against the worker.
 */
import { exports } from "cloudflare:workers";
import { hc } from "hono/client";
import { describe, expect, expectTypeOf, it } from "vitest";
import type { SessionRoutes } from "../../src/http/sessions";

const client = hc<SessionRoutes>("http://local/v1/sessions", {
  fetch: (input: RequestInfo | URL, init?: RequestInit) =>
    exports.default.fetch(new Request(input, init)),
});

describe("hc<SessionRoutes>", () => {
  it("types requests and responses from the routes", async () => {
    const created = await client.index.$post({ json: { title: "typed" } });
    expect(created.status).toBe(201);
    if (created.status !== 201) return;
    const { session } = await created.json();
    expectTypeOf(session.status).toEqualTypeOf<
      "idle" | "running" | "awaiting_approval" | "failed" | "cancelled" | "deleted"
    >();

    const sent = await client[":id"].messages.$post({
      param: { id: session.id },
      json: { content: "hello" },
    });
    expect(sent.status).toBe(202);
    if (sent.status !== 202) return;
    const body = await sent.json();
    expectTypeOf(body.offset).toEqualTypeOf<number>();
    expect(body.offset).toBeGreaterThan(0);

    const minted = await client[":id"].tokens.$post({
      param: { id: session.id },
      json: { scopes: ["read"], ttlSeconds: 60 },
    });
    expect(minted.status).toBe(201);
    if (minted.status !== 201) return;
    const token = await minted.json();
    expectTypeOf(token.scopes).toEqualTypeOf<("read" | "write" | "approve")[]>();

    // @ts-expect-error: content is required
    const bad = await client[":id"].messages.$post({ param: { id: session.id }, json: {} });
    expect(bad.status).toBe(400);
  });
});
