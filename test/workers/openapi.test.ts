import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import * as api from "../../src/http/api-schemas";
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

type ResponseDoc = { content?: Record<string, { schema?: Record<string, unknown> }> };
const get = (path: string) => exports.default.fetch(`http://local${path}`);
