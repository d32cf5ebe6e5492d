/**
 * A reduced state is validated part by part at commit: the result is the schema's (same
 * value, same errors, defaults applied), but a top-level field whose JSON is the one last
 * validated is not validated again; schemas that are not plain objects take the whole schema.
 */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { validateState } from "../../src/processors/state-validation";
import { agentStateSchema, initialAgentState } from "../../src/sessions/conversation";

/** A field schema that counts how often it validates. */
function counted<T extends z.ZodType>(schema: T) {
  const calls = { n: 0 };
  return {
    calls,
    schema: schema.refine(() => {
      calls.n += 1;
      return true;
    }),
  };
}

function ok(result: ReturnType<typeof validateState>) {
  if (!result.ok) throw new Error(`unexpected failure: ${result.error.message}`);
  return result;
}

describe("validateState", () => {
  it("stores what the schema returns (defaults applied, unknown keys stripped, shape order)", () => {
    const schema = z.object({
      b: z.number(),
      a: z.string().default("q"),
      list: z.array(z.object({ id: z.string(), extra: z.number().default(1) })),
    });
    for (const state of [
      { a: "x", b: 1, list: [] },
      { list: [{ id: "i" }], b: 2, junk: true },
      { b: 3, a: "y", list: [{ id: "j", extra: 5, more: "dropped" }] },
    ]) {
      const first = ok(validateState(schema, state, null));
      expect(first.text).toBe(JSON.stringify(schema.parse(state)));
      // Again with its own parts known: the same text.
      expect(ok(validateState(schema, JSON.parse(first.text), first.parts)).text).toBe(first.text);
    }
    const agent = { ...initialAgentState, messageCount: 3, queue: [{ messageId: "m", offset: 4 }] };
    expect(ok(validateState(agentStateSchema, agent, null)).text).toBe(
      JSON.stringify(agentStateSchema.parse(agent)),
    );
  });

  it("validates only the fields whose JSON differs from the last validated parts", () => {
    const config = counted(z.object({ model: z.string(), tools: z.array(z.string()) }));
    const turn = counted(z.object({ id: z.string(), step: z.number().int() }).nullable());
    const schema = z.object({ config: config.schema, turn: turn.schema });
    const first = ok(
      validateState(schema, { config: { model: "m", tools: ["echo"] }, turn: null }, null),
    );
    expect([config.calls.n, turn.calls.n]).toEqual([1, 1]);

    const second = ok(
      validateState(
        schema,
        { config: { model: "m", tools: ["echo"] }, turn: { id: "t", step: 1 } },
        first.parts,
      ),
    );
    expect([config.calls.n, turn.calls.n]).toEqual([1, 2]); // config is the stored one again
    expect(JSON.parse(second.text)).toEqual({
      config: { model: "m", tools: ["echo"] },
      turn: { id: "t", step: 1 },
    });

    // A field changed by even one value is validated, and refused when it is wrong.
    const bad = validateState(
      schema,
      { config: { model: "m", tools: ["echo"] }, turn: { id: "t", step: 1.5 } },
      second.parts,
    );
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error.issues[0]?.path).toEqual(["turn", "step"]);
    const changed = validateState(
      schema,
      { config: { model: "m", tools: [7] }, turn: { id: "t", step: 1 } },
      second.parts,
    );
    expect(changed.ok).toBe(false);
    if (!changed.ok) expect(changed.error.issues[0]?.path).toEqual(["config", "tools", 0]);
  });

  it("takes the whole schema for a left-out field (its default), a non-object, or a non-JSON value", () => {
    const schema = z.object({ n: z.number(), tags: z.array(z.string()).default([]) });
    const first = ok(validateState(schema, { n: 1, tags: ["a"] }, null));
    expect(ok(validateState(schema, { n: 2 }, first.parts)).text).toBe('{"n":2,"tags":[]}');
    const missing = validateState(schema, { tags: ["a"] }, first.parts);
    expect(missing.ok).toBe(false);
    if (!missing.ok) expect(missing.error.issues[0]?.path).toEqual(["n"]);
    expect(validateState(schema, null, first.parts).ok).toBe(false);
    expect(validateState(schema, [1], first.parts).ok).toBe(false);
    const big = validateState(schema, { n: 10n, tags: ["a"] }, first.parts);
    expect(big.ok).toBe(false);
    if (!big.ok) expect(big.error.issues[0]?.path).toEqual(["n"]);
  });

  it("validates every time when the schema is not a plain object", () => {
    const inner = counted(z.string());
    const schemas = [
      z.object({ s: inner.schema }).refine(() => true),
      z.strictObject({ s: inner.schema }),
      z.looseObject({ s: inner.schema }),
    ];
    for (const schema of schemas) {
      const before = inner.calls.n;
      const first = ok(validateState(schema, { s: "x" }, null));
      ok(validateState(schema, { s: "x" }, first.parts));
      expect(first.parts).toBeNull();
      expect(inner.calls.n - before).toBe(2);
    }
    // A strict schema still refuses unknown keys; a loose one keeps them.
    expect(validateState(z.strictObject({ s: z.string() }), { s: "x", t: 1 }, null).ok).toBe(false);
    expect(ok(validateState(z.looseObject({ s: z.string() }), { s: "x", t: 1 }, null)).text).toBe(
      '{"s":"x","t":1}',
    );
  });
});
