/** Content types (src/streams/content-type.ts). */
import { describe, expect, it } from "vitest";
import {
  isJsonType,
  isSseBinary,
  isValidContentType,
  sameContentType,
} from "../../src/streams/content-type";

describe("content types", () => {
  it("compare by media type, case and parameters aside", () => {
    expect(sameContentType("Application/JSON; charset=utf-8", "application/json")).toBe(true);
    expect(sameContentType("text/plain", "application/json")).toBe(false);
    expect(isJsonType("application/json;charset=utf-8")).toBe(true);
  });
  it("send only non-text, non-JSON types as base64 over SSE", () => {
    expect(isSseBinary("text/plain")).toBe(false);
    expect(isSseBinary("application/json")).toBe(false);
    expect(isSseBinary("image/png")).toBe(true);
    expect(isSseBinary("application/octet-stream")).toBe(true);
  });
  it("validate the type/subtype shape", () => {
    expect(isValidContentType("text/plain; charset=utf-8")).toBe(true);
    expect(isValidContentType("garbage")).toBe(false);
    expect(isValidContentType("")).toBe(false);
  });
});
