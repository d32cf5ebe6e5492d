/**
 * Tenants and auth: bearer keys on every /v1 route (streams and subscriptions), the dev key,
 * the admin routes that mint keys, and tenant isolation. The test config sets the test-only
 * INSECURE_DEFAULT_TENANT, so requests without a header are accepted through the exported
 * worker; the missing-header cases use an app built over an env without that setting.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { authenticate } from "../../src/auth/authenticate";
import type { Env } from "../../src/env";
import { DomainError } from "../../src/errors/domain";
import { statusOf } from "../../src/errors/http";
import { createApp } from "../../src/http/app";
import { errorAnswer } from "../../src/http/errors";
import { sha256Hex } from "../../src/secrets";
import { streamName } from "../../src/streams/naming";
import { rpcClient } from "../support/rpc";

const ORIGIN = "http://auth.test";
const DEV_KEY = "das_dev_local_development_key_0000";
const ADMIN = { authorization: "Bearer dev-admin-token" };
const UNKNOWN_KEY = `das_0badc0de_${"A".repeat(43)}`;

const unique = (label: string) => `${label}-${crypto.randomUUID().slice(0, 8)}`;

function call(path: string, init: RequestInit = {}): Promise<Response> {
  return exports.default.fetch(`${ORIGIN}${path}`, init);
}

/** A request through an app whose env differs from the test config (e.g. no test tenant). */
async function callWith(overrides: Partial<Env>, path: string, init: RequestInit = {}) {
  const ctx = createExecutionContext();
  const res = await createApp().fetch(
    new Request(`${ORIGIN}${path}`, init),
    { ...env, ...overrides },
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return res;
}

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

async function expectError(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toContain("application/json");
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe("string");
  return body;
}

async function expectUnauthorized(res: Response) {
  expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
  return expectError(res, 401, "unauthorized");
}

async function createTenantWithKey(label: string) {
  const id = unique(label);
  const t = await call("/admin/tenants", {
    method: "POST",
    headers: { ...ADMIN, "content-type": "application/json" },
    body: JSON.stringify({ id, name: `Tenant ${label}` }),
  });
  expect(t.status).toBe(201);
  const k = await call(`/admin/tenants/${id}/keys`, {
    method: "POST",
    headers: { ...ADMIN, "content-type": "application/json" },
    body: JSON.stringify({ name: "ci" }),
  });
  expect(k.status).toBe(201);
  const created = (await k.json()) as { key: string; prefix: string; tenantId: string };
  expect(created.tenantId).toBe(id);
  return { id, key: created.key, prefix: created.prefix };
}

const putJson = (path: string, headers: Record<string, string>) =>
  call(`/v1/stream${path}`, {
    method: "PUT",
    headers: { ...headers, "content-type": "application/json" },
  });

describe("authenticate()", () => {
  const base = { DB: env.DB, DEV_API_KEY: DEV_KEY, DEV_TENANT_ID: "dev" };

  it("rejects a request without an Authorization header when no test tenant is set", async () => {
    const error = await authenticate(undefined, base).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DomainError);
    expect(statusOf(error as DomainError)).toBe(401);
    expect((error as DomainError).code).toBe("unauthorized");
    // The challenge is the edge's: it renders one for every 401.
    expect(errorAnswer(error as DomainError).headers.get("www-authenticate")).toMatch(/^Bearer/);
  });

  it("uses the test tenant only when the header is absent", async () => {
    const withDefault = { ...base, INSECURE_DEFAULT_TENANT: "t0" };
    expect(await authenticate(undefined, withDefault)).toBe("t0");
    await expect(authenticate("Bearer nope", withDefault)).rejects.toMatchObject({
      code: "unauthorized",
    });
    await expect(authenticate("", withDefault)).rejects.toMatchObject({ code: "unauthorized" });
  });

  it("resolves the dev key to the dev tenant", async () => {
    expect(await authenticate(`Bearer ${DEV_KEY}`, base)).toBe("dev");
    expect(await authenticate(`bearer ${DEV_KEY}`, base)).toBe("dev");
    await expect(authenticate(`Bearer ${DEV_KEY}x`, base)).rejects.toMatchObject({
      code: "unauthorized",
    });
    await expect(authenticate(`Bearer ${DEV_KEY}`, { DB: env.DB })).rejects.toMatchObject({
      code: "unauthorized",
    });
  });

  it("compares with the dev key configured now (its digest is remembered per value)", async () => {
    const keyA = "das_dev_key_a_0000";
    const keyB = "das_dev_key_b_0000";
    expect(await authenticate(`Bearer ${keyA}`, { ...base, DEV_API_KEY: keyA })).toBe("dev");
    await expect(
      authenticate(`Bearer ${keyA}`, { ...base, DEV_API_KEY: keyB }),
    ).rejects.toMatchObject({ code: "unauthorized" });
    expect(await authenticate(`Bearer ${keyB}`, { ...base, DEV_API_KEY: keyB })).toBe("dev");
    await expect(
      authenticate(`Bearer ${keyB}`, { ...base, DEV_API_KEY: keyA }),
    ).rejects.toMatchObject({ code: "unauthorized" });
  });
});

describe("bearer keys on /v1", () => {
  it("answers 401 JSON without a header when auth is required (streams and subscriptions)", async () => {
    const noTestTenant = { INSECURE_DEFAULT_TENANT: undefined };
    await expectUnauthorized(await callWith(noTestTenant, "/v1/stream/a"));
    await expectUnauthorized(
      await callWith(noTestTenant, "/v1/stream/a", {
        method: "PUT",
        headers: { "content-type": "application/json" },
      }),
    );
    await expectUnauthorized(await callWith(noTestTenant, "/v1/subscriptions?stream=/a"));
    // The dev key still works there.
    const ok = await callWith(noTestTenant, `/v1/stream/${unique("p")}`, {
      method: "PUT",
      headers: { ...bearer(DEV_KEY), "content-type": "application/json" },
    });
    await ok.body?.cancel();
    expect(ok.status).toBe(201);
  });

  it("keeps CORS preflights and /healthz open", async () => {
    const noTestTenant = { INSECURE_DEFAULT_TENANT: undefined };
    const pre = await callWith(noTestTenant, "/v1/stream/a", {
      method: "OPTIONS",
      headers: { origin: "https://app.example", "access-control-request-method": "PUT" },
    });
    await pre.body?.cancel();
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-headers")).toContain("authorization");
    const health = await callWith(noTestTenant, "/healthz");
    expect(health.status).toBe(200);
    await health.body?.cancel();
  });

  it.each([
    ["a Basic header", "Basic dXNlcjpwYXNz"],
    ["an empty bearer", "Bearer "],
    ["a bearer with spaces", "Bearer a b"],
    ["garbage", "!!!"],
    ["an unknown well-formed key", `Bearer ${UNKNOWN_KEY}`],
    ["an unknown malformed key", "Bearer das_nothing"],
  ])("answers 401 JSON to %s", async (_label, authorization) => {
    await expectUnauthorized(await call("/v1/stream/a", { headers: { authorization } }));
    await expectUnauthorized(
      await call("/v1/stream/a", {
        method: "POST",
        headers: { authorization, "content-type": "application/json" },
        body: "[]",
      }),
    );
    await expectUnauthorized(
      await call("/v1/subscriptions?stream=/a", { headers: { authorization } }),
    );
  });

  it("refuses a tenant key whose secret part is wrong, right after the key itself passed", async () => {
    const { key } = await createTenantWithKey("wrong-secret");
    const path = `/${unique("ws")}`;
    const ok = await putJson(path, bearer(key));
    await ok.body?.cancel();
    expect(ok.status).toBe(201);
    // Same public prefix, another secret: the lookup finds the row, the digests differ.
    const last = key.at(-1) === "A" ? "B" : "A";
    const forged = `${key.slice(0, -1)}${last}`;
    await expectUnauthorized(
      await call(`/v1/stream${path}?offset=-1`, { headers: bearer(forged) }),
    );
    const again = await call(`/v1/stream${path}?offset=-1`, { headers: bearer(key) });
    await again.body?.cancel();
    expect(again.status).toBe(200);
  });

  it("lets the dev key act as the dev tenant", async () => {
    const path = `/${unique("dev")}`;
    const res = await putJson(path, bearer(DEV_KEY));
    await res.body?.cancel();
    expect(res.status).toBe(201);
    // The stream belongs to tenant "dev": its Durable Object is named dev:<path>.
    const stub = rpcClient(env.STREAMS.get(env.STREAMS.idFromName(streamName("dev", path))));
    expect((await stub.head()).lastOffset).toBe(0);
    // The test tenant ("default", requests without a header) does not see it.
    const other = await call(`/v1/stream${path}?offset=-1`);
    await expectError(other, 404, "not_found");
  });
});

describe("admin routes", () => {
  it("creates a tenant and a key shown once; only its hash is stored", async () => {
    const { id, key, prefix } = await createTenantWithKey("acme");
    expect(key).toMatch(/^das_[0-9a-f]{8}_[A-Za-z0-9_-]{43}$/);
    expect(key.startsWith(`das_${prefix}_`)).toBe(true);

    const row = await env.DB.prepare("SELECT * FROM api_keys WHERE prefix = ?")
      .bind(prefix)
      .first<Record<string, unknown>>();
    expect(row).not.toBeNull();
    expect(row!.tenant_id).toBe(id);
    expect(row!.hash).toBe(await sha256Hex(key));
    const secret = key.slice(`das_${prefix}_`.length);
    for (const value of Object.values(row!)) {
      expect(String(value)).not.toContain(secret);
    }

    // The key works, and acts as its tenant.
    const path = `/${unique("acme")}`;
    const res = await putJson(path, bearer(key));
    await res.body?.cancel();
    expect(res.status).toBe(201);
    const stub = rpcClient(env.STREAMS.get(env.STREAMS.idFromName(streamName(id, path))));
    expect((await stub.head()).lastOffset).toBe(0);
  });

  it("generates a tenant id when none is given", async () => {
    const res = await call("/admin/tenants", {
      method: "POST",
      headers: { ...ADMIN, "content-type": "application/json" },
      body: JSON.stringify({ name: "Generated" }),
    });
    expect(res.status).toBe(201);
    const { tenant } = (await res.json()) as { tenant: { id: string; name: string } };
    expect(tenant.id).toMatch(/^[a-z0-9]{26}$/);
    expect(tenant.name).toBe("Generated");
  });

  it("answers 409 for an existing tenant id, 404 for keys of an unknown tenant", async () => {
    const id = unique("dup");
    const body = JSON.stringify({ id, name: "Dup" });
    const headers = { ...ADMIN, "content-type": "application/json" };
    const first = await call("/admin/tenants", { method: "POST", headers, body });
    await first.body?.cancel();
    expect(first.status).toBe(201);
    await expectError(
      await call("/admin/tenants", { method: "POST", headers, body }),
      409,
      "conflict",
    );
    await expectError(
      await call(`/admin/tenants/${unique("nobody")}/keys`, {
        method: "POST",
        headers,
        body: JSON.stringify({ name: "k" }),
      }),
      404,
      "not_found",
    );
  });

  it("validates inputs", async () => {
    const headers = { ...ADMIN, "content-type": "application/json" };
    await expectError(
      await call("/admin/tenants", {
        method: "POST",
        headers,
        body: JSON.stringify({ id: "a:b", name: "x" }),
      }),
      400,
      "validation_failed",
    );
    await expectError(
      await call("/admin/tenants", { method: "POST", headers, body: JSON.stringify({}) }),
      400,
      "validation_failed",
    );
    await expectError(
      await call("/admin/tenants", { method: "POST", headers, body: "{" }),
      400,
      "invalid_json",
    );
    await expectError(
      await call("/admin/tenants/x/keys/NOTHEX", { method: "DELETE", headers: ADMIN }),
      400,
      "validation_failed",
    );
  });

  it("revokes a key: it stops working at once; unknown keys are 404", async () => {
    const { id, key, prefix } = await createTenantWithKey("revoke");
    const path = `/${unique("r")}`;
    const before = await putJson(path, bearer(key));
    await before.body?.cancel();
    expect(before.status).toBe(201);

    const del = await call(`/admin/tenants/${id}/keys/${prefix}`, {
      method: "DELETE",
      headers: ADMIN,
    });
    expect(del.status).toBe(204);
    await expectUnauthorized(await call(`/v1/stream${path}?offset=-1`, { headers: bearer(key) }));
    await expectUnauthorized(
      await call(`/v1/subscriptions?stream=${path}`, { headers: bearer(key) }),
    );

    // Revoking again is still a success; someone else's tenant or an unknown prefix is 404.
    const again = await call(`/admin/tenants/${id}/keys/${prefix}`, {
      method: "DELETE",
      headers: ADMIN,
    });
    expect(again.status).toBe(204);
    await expectError(
      await call(`/admin/tenants/${unique("other")}/keys/${prefix}`, {
        method: "DELETE",
        headers: ADMIN,
      }),
      404,
      "not_found",
    );
    await expectError(
      await call(`/admin/tenants/${id}/keys/00000000`, { method: "DELETE", headers: ADMIN }),
      404,
      "not_found",
    );
  });

  it("answers 401 without a token and 403 with a wrong one", async () => {
    const body = JSON.stringify({ name: "x" });
    const json = { "content-type": "application/json" };
    await expectUnauthorized(await call("/admin/tenants", { method: "POST", headers: json, body }));
    await expectError(
      await call("/admin/tenants", {
        method: "POST",
        headers: { ...json, authorization: "Bearer wrong-token" },
        body,
      }),
      403,
      "forbidden",
    );
    // An API key is not an admin token.
    await expectError(
      await call("/admin/tenants", {
        method: "POST",
        headers: { ...json, ...bearer(DEV_KEY) },
        body,
      }),
      403,
      "forbidden",
    );
  });

  it("does not exist when ADMIN_TOKEN is unset", async () => {
    const res = await callWith({ ADMIN_TOKEN: undefined }, "/admin/tenants", {
      method: "POST",
      headers: { ...ADMIN, "content-type": "application/json" },
      body: JSON.stringify({ name: "x" }),
    });
    await expectError(res, 404, "not_found");
  });
});

describe("tenant isolation", () => {
  it("keeps streams and subscriptions of one tenant invisible to another", async () => {
    const a = await createTenantWithKey("a");
    const b = await createTenantWithKey("b");
    const path = `/${unique("x")}`;

    expect((await putJson(path, bearer(a.key))).status).toBe(201);
    const append = await call(`/v1/stream${path}`, {
      method: "POST",
      headers: { ...bearer(a.key), "content-type": "application/json" },
      body: JSON.stringify([{ type: "note/added", payload: { text: "secret" } }]),
    });
    await append.body?.cancel();
    expect(append.status).toBeLessThan(300);
    const sub = await call("/v1/subscriptions", {
      method: "PUT",
      headers: { ...bearer(a.key), "content-type": "application/json" },
      body: JSON.stringify({
        stream: path,
        key: "audit",
        callable: {
          kind: "durable-object",
          binding: "TEST_SUBSCRIBERS",
          name: `${a.id}:${unique("s")}`,
          method: "receive",
        },
        eventTypes: ["*"],
      }),
    });
    await sub.body?.cancel();
    expect(sub.status).toBe(201);

    // B cannot read, head, append to or delete A's stream: it does not exist for B.
    await expectError(
      await call(`/v1/stream${path}?offset=-1`, { headers: bearer(b.key) }),
      404,
      "not_found",
    );
    const head = await call(`/v1/stream${path}`, { method: "HEAD", headers: bearer(b.key) });
    await head.body?.cancel();
    expect(head.status).toBe(404);
    await expectError(
      await call(`/v1/stream${path}`, {
        method: "POST",
        headers: { ...bearer(b.key), "content-type": "application/json" },
        body: "[1]",
      }),
      404,
      "not_found",
    );
    // B cannot fork A's stream either.
    await expectError(
      await call(`/v1/stream/${unique("fork")}`, {
        method: "PUT",
        headers: {
          ...bearer(b.key),
          "content-type": "application/json",
          "stream-forked-from": path,
        },
      }),
      404,
      "not_found",
    );

    // B's subscriptions on that path: none (A's are invisible).
    const listB = await call(`/v1/subscriptions?stream=${encodeURIComponent(path)}`, {
      headers: bearer(b.key),
    });
    if (listB.status === 200) {
      expect(((await listB.json()) as { subscriptions: unknown[] }).subscriptions).toEqual([]);
    } else {
      await expectError(listB, 404, "not_found");
    }

    // B creates its own stream at the same path, independent of A's.
    expect((await putJson(path, bearer(b.key))).status).toBe(201);
    const readB = await call(`/v1/stream${path}?offset=-1`, { headers: bearer(b.key) });
    expect(readB.status).toBe(200);
    expect(await readB.json()).toEqual([]);
    const listB2 = await call(`/v1/subscriptions?stream=${encodeURIComponent(path)}`, {
      headers: bearer(b.key),
    });
    expect(((await listB2.json()) as { subscriptions: unknown[] }).subscriptions).toEqual([]);

    // A still sees its event and its subscription.
    const readA = await call(`/v1/stream${path}?offset=-1`, { headers: bearer(a.key) });
    expect(readA.status).toBe(200);
    const eventsA = (await readA.json()) as { type: string }[];
    expect(eventsA.map((e) => e.type)).toEqual(["note/added", "stream/subscription-configured"]);
    const listA = await call(`/v1/subscriptions?stream=${encodeURIComponent(path)}`, {
      headers: bearer(a.key),
    });
    const subsA = ((await listA.json()) as { subscriptions: { key: string }[] }).subscriptions;
    expect(subsA.map((s) => s.key)).toEqual(["audit"]);

    // And B cannot remove A's subscription.
    const del = await call(`/v1/subscriptions?stream=${encodeURIComponent(path)}&key=audit`, {
      method: "DELETE",
      headers: bearer(b.key),
    });
    await del.body?.cancel();
    expect(del.status).toBe(404);
  });
});
