/** Processor contracts (src/processors/contract.ts): validation of a declared contract. */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { consumedTypes, defineContract } from "../../src/processors/contract";

const events = {
  "test/a-happened": z.object({ n: z.number() }),
  "test/b-happened": z.object({ s: z.string() }),
};
const state = z.object({ count: z.number().int(), label: z.string().default("none") });

/** A valid spec to vary one field at a time (cast: the variations are deliberately wrong). */
// biome-ignore lint/suspicious/noExplicitAny: building deliberately invalid specs
const spec = (over: Record<string, unknown> = {}): any => ({
  name: "demo",
  version: 1,
  events,
  consumes: ["test/a-happened"],
  emits: ["test/b-happened"],
  state,
  initialState: { count: 0 },
  ...over,
});

describe("defineContract", () => {
  it("accepts a valid contract and applies state defaults to initialState", () => {
    const contract = defineContract(spec());
    expect(contract.name).toBe("demo");
    expect(contract.initialState).toEqual({ count: 0, label: "none" });
    expect(consumedTypes(contract)).toEqual(["test/a-happened"]);
  });

  it("refuses an unknown consumed type, naming it", () => {
    expect(() => defineContract(spec({ consumes: ["test/a-happened", "test/typo-ed"] }))).toThrow(
      /test\/typo-ed/,
    );
  });

  it("refuses an unknown emitted type, naming it", () => {
    expect(() => defineContract(spec({ emits: ["test/never-declared"] }))).toThrow(
      /test\/never-declared/,
    );
  });

  it.each(["has space", "", "a//b", "/leading", "trailing/", "x".repeat(201), "emoji/✨"])(
    "refuses the event type name %j in the catalog",
    (bad) => {
      expect(() =>
        defineContract(
          spec({ events: { ...events, [bad]: z.object({}) }, consumes: ["test/a-happened"] }),
        ),
      ).toThrow(/event type/);
    },
  );

  it("refuses an initialState that does not match the state schema", () => {
    expect(() => defineContract(spec({ initialState: { count: "zero" } }))).toThrow(/initialState/);
    expect(() => defineContract(spec({ initialState: {} }))).toThrow(/initialState/);
  });

  it("refuses a name that is not kebab-case", () => {
    expect(() => defineContract(spec({ name: "Demo Processor" }))).toThrow(/kebab-case/);
  });

  it('accepts "*" consumes, which means the whole catalog', () => {
    const contract = defineContract(spec({ consumes: "*" }));
    expect(contract.consumes).toBe("*");
    expect(consumedTypes(contract).sort()).toEqual(["test/a-happened", "test/b-happened"]);
  });

  it('still checks emits when consumes is "*"', () => {
    expect(() => defineContract(spec({ consumes: "*", emits: ["test/unknown"] }))).toThrow(
      /test\/unknown/,
    );
  });
});
