import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import * as api from "../../src/http/api-schemas";
import { createApp } from "../../src/http/app";
import { post, waitForSession } from "../support/session-api";

describe("GET /openapi.json", () => {
  it("describes the session and subscription API with the routes' own request schemas", async () => {
    const res = await exports.default.fetch("http://local/openapi.json");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<
        string,
        Record<
          string,
          { requestBody?: { content: { "application/json": { schema: { properties?: object } } } } }
        >
      >;
    };
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        "/v1/sessions",
        "/v1/sessions/{id}",
        "/v1/sessions/{id}/messages",
        "/v1/sessions/{id}/events",
        "/v1/sessions/{id}/tool-calls/{toolCallId}/decision",
        "/v1/sessions/{id}/cancel",
        "/v1/subscriptions",
        "/v1/subscriptions/resume",
        "/v1/subscriptions/skip",
      ]),
    );
    const create = doc.paths["/v1/sessions"]!.post!.requestBody!.content["application/json"].schema;
    expect(Object.keys(create.properties ?? {})).toEqual(["title", "model", "system", "tools"]);
    const put =
      doc.paths["/v1/subscriptions"]!.put!.requestBody!.content["application/json"].schema;
    expect(Object.keys(put.properties ?? {})).toEqual([
      "stream",
      "key",
      "callable",
      "eventTypes",
      "startAt",
    ]);
  });
});

describe("the documented responses", () => {
  it("describes a JSON response schema for every JSON answer", async () => {
    const res = await exports.default.fetch("http://local/openapi.json");
    const doc = (await res.json()) as {
      paths: Record<string, Record<string, { responses?: Record<string, ResponseDoc> }>>;
    };
    let described = 0;
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        if (method === "parameters") continue;
        for (const [status, response] of Object.entries(op.responses ?? {})) {
          const schema = response.content?.["application/json"]?.schema;
          if (status === "204" || !response.content) continue;
          expect(schema, `${method} ${path} ${status}`).toBeDefined();
          expect(Object.keys(schema!).length, `${method} ${path} ${status}`).toBeGreaterThan(0);
          described++;
        }
      }
    }
    expect(described).toBeGreaterThan(15);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(["/v1/sessions/{id}/tokens", "/v1/sessions/{id}/tokens/revoke"]),
    );
  });

  it("matches what the session routes really answer", async () => {
    const created = await post("/v1/sessions", { title: "documented" });
    expect(created.status).toBe(201);
    const { session } = api.sessionCreatedSchema.parse(await created.json());
    const id = session.id;
    const sent = await post(`/v1/sessions/${id}/messages`, {
      content: 'call notes_write {"key":"k","text":"t"}',
    });
    expect(sent.status).toBe(202);
    api.messageAcceptedSchema.parse(await sent.json());
    const waiting = await waitForSession(id, (s) => s.live.pendingApprovals.length === 1);
    const toolCallId = waiting.live.pendingApprovals[0]!.toolCallId;
    const decided = await post(`/v1/sessions/${id}/tool-calls/${toolCallId}/decision`, {
      approved: true,
    });
    expect(decided.status).toBe(200);
    api.decisionSchema.parse(await decided.json());
    await waitForSession(id, (s) => s.live.status === "idle");
    api.sessionSchema.parse(await (await get(`/v1/sessions/${id}`)).json());
    api.sessionPageSchema.parse(await (await get("/v1/sessions?limit=5")).json());
    const events = api.eventsSchema.parse(
      await (await get(`/v1/sessions/${id}/events?offset=-1`)).json(),
    );
    expect(events.map((e) => e.type)).toContain("tool/call-completed");
    const token = await post(`/v1/sessions/${id}/tokens`, { scopes: ["read"] });
    expect(token.status).toBe(201);
    api.tokenSchema.parse(await token.json());
    const cancelled = await post(`/v1/sessions/${id}/cancel`);
    expect(cancelled.status).toBe(202);
    api.cancelAcceptedSchema.parse(await cancelled.json());
    const error = await get("/v1/sessions/01ARZ3NDEKTSV4RRFFQ69G5FAV");
    expect(error.status).toBe(404);
    api.errorSchema.parse(await error.json());
  });
});

describe("the document is generated from the routes", () => {
  it("documents every /v1 route with a JSON schema for each answer and the error body", async () => {
    const doc = (await (await get("/openapi.json")).json()) as {
      paths: Record<string, Record<string, OperationDoc>>;
    };
    // The router's own table: each method + path of /v1 (catch-alls are the stream and RPC APIs).
    const routes = new Set(
      createApp()
        .routes.filter((r) => r.path.startsWith("/v1/") && !["ALL", "OPTIONS"].includes(r.method))
        .map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:(\w+)/g, "{$1}")}`),
    );
    expect(routes.size).toBeGreaterThan(14);
    const documented = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.keys(item).map((method) => `${method} ${path}`),
    );
    expect(documented.sort()).toEqual([...routes].sort());
    for (const name of routes) {
      const [method, path] = name.split(" ") as [string, string];
      const op = doc.paths[path]![method]!;
      const answers = Object.entries(op.responses);
      const successes = answers.filter(([status]) => status.startsWith("2"));
      expect(successes.length, `${name} documents its success`).toBeGreaterThan(0);
      for (const [status, response] of successes) {
        if (status === "204") continue;
        const schema = response.content?.["application/json"]?.schema;
        expect(Object.keys(schema ?? {}).length, `${name} ${status} has a schema`).toBeGreaterThan(
          1,
        );
      }
      const error = op.responses["4XX"]?.content?.["application/json"]?.schema;
      expect(error?.properties, `${name} documents its error body`).toHaveProperty("error");
    }
  });

  it("takes parameters from the validators and security from each route's access scope", async () => {
    const doc = (await (await get("/openapi.json")).json()) as {
      paths: Record<string, Record<string, OperationDoc>>;
    };
    const events = doc.paths["/v1/sessions/{id}/events"]!.get!;
    expect(events.security).toEqual([{ apiKey: [] }, { sessionToken: ["read"] }]);
    expect(events.parameters.map((p) => `${p.in}:${p.name}`)).toEqual([
      "path:id",
      "query:offset",
      "query:live",
      "query:cursor",
      "query:view",
      "query:token",
      "header:Last-Event-ID",
    ]);
    expect(events.parameters[0]!.schema).toMatchObject({ pattern: "^[0-9A-HJKMNP-TV-Z]{26}$" });
    expect(doc.paths["/v1/sessions/{id}"]!.delete!.security).toEqual([{ apiKey: [] }]);
    expect(doc.paths["/v1/sessions"]!.post!.security).toBeUndefined(); // the document's default: API key
    const decision = doc.paths["/v1/sessions/{id}/tool-calls/{toolCallId}/decision"]!.post!;
    expect(decision.security).toEqual([{ apiKey: [] }, { sessionToken: ["approve"] }]);
    const list = doc.paths["/v1/sessions"]!.get!.parameters;
    expect(list.find((p) => p.name === "limit")).toMatchObject({
      in: "query",
      required: false,
      schema: { type: "integer", maximum: 100 },
    });
    const skip = doc.paths["/v1/subscriptions/skip"]!.post!;
    expect(skip.parameters.map((p) => `${p.in}:${p.name}:${p.required}`)).toEqual([
      "query:stream:true",
      "query:key:true",
    ]);
    expect(skip.requestBody?.required).toBe(false);
  });
});

type OperationDoc = {
  security?: unknown;
  parameters: { name: string; in: string; required: boolean; schema: unknown }[];
  requestBody?: { required: boolean };
  responses: Record<string, ResponseDoc>;
};
type ResponseDoc = { content?: Record<string, { schema?: Record<string, unknown> }> };
const get = (path: string) => exports.default.fetch(`http://local${path}`);
