/** The 405 route index (src/http/allow.ts): which methods a path allows. */
import { describe, expect, it } from "vitest";
import { allowIndex, pathIndex } from "../../src/http/allow";

describe("405 route index", () => {
  const allowed = allowIndex([
    { method: "ALL", path: "/*" },
    { method: "OPTIONS", path: "/*" },
    { method: "POST", path: "/v1/sessions" },
    { method: "GET", path: "/v1/sessions" },
    { method: "GET", path: "/v1/sessions/:id" },
    { method: "DELETE", path: "/v1/sessions/:id" },
    { method: "POST", path: "/v1/sessions/:id/tool-calls/:toolCallId/decision" },
    { method: "ALL", path: "/v1/stream/*" },
  ]);

  it("lists a known path's methods, in a stable order", () => {
    expect(allowed("/v1/sessions")).toEqual(["GET", "HEAD", "POST", "OPTIONS"]);
    expect(allowed("/v1/sessions/abc")).toEqual(["GET", "HEAD", "DELETE", "OPTIONS"]);
    expect(allowed("/v1/sessions/a/tool-calls/b/decision")).toEqual(["POST", "OPTIONS"]);
  });

  it("knows nothing of unknown paths or catch-alls", () => {
    expect(allowed("/v1/nothing")).toEqual([]);
    expect(allowed("/v1/sessions/a/b")).toEqual([]);
    expect(allowed("/v1/stream/x")).toEqual([]);
  });
});

describe("path index", () => {
  const isKnown = pathIndex([
    { method: "GET", path: "/v1/sessions/:id" },
    { method: "POST", path: "/v1/sessions/:id/messages" },
    { method: "GET", path: "/v1/sessions/:id/messages" },
    { method: "GET", path: "/v1/files/*" },
    { method: "GET", path: "/v1/a.b" },
  ]);

  it("answers whether a pathname is the path of any of the routes, whole paths only", () => {
    expect(isKnown("/v1/sessions/abc")).toBe(true);
    expect(isKnown("/v1/sessions/abc/messages")).toBe(true);
    expect(isKnown("/v1/files/x/y")).toBe(true);
    expect(isKnown("/v1/a.b")).toBe(true);
    expect(isKnown("/v1/axb")).toBe(false);
    expect(isKnown("/v1/sessions")).toBe(false);
    expect(isKnown("/v1/sessions/abc/events")).toBe(false);
    expect(isKnown("/x/v1/sessions/abc")).toBe(false);
    expect(isKnown("/v1/sessions/abc/messages/more")).toBe(false);
  });

  it("knows no path when there are no routes", () => {
    expect(pathIndex([])("/v1/sessions/abc")).toBe(false);
  });
});
