import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

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
