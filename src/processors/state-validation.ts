/**
 * Validating a reduced state before it is committed, part by part. Every batch ends with a
 * commit, and a batch usually changes one or two of a state's top-level fields (the running
 * turn, a queue) while the rest (configuration, a summary) are what the last commit stored.
 * For a state schema that is a plain object — strip mode, no object-level checks, where a
 * field's validity depends on that field alone — a field whose JSON text is the text of that
 * field as last validated is that stored value again, so only the other fields go through
 * their schemas. The stored text is composed of the fields' texts, in the shape's order.
 *
 * Anything else (another kind of schema, a state that is not a plain object, a field left
 * out, a field that fails) takes the whole schema, as before, so errors and defaults are
 * exactly the schema's. Pure: the state store keeps the parts between commits.
 */
import { z } from "zod";

/** Each top-level field's JSON text, as last validated (absent: the field is left out). */
export type StateParts = ReadonlyMap<string, string>;

export type ValidatedState =
  | { ok: true; text: string; parts: StateParts | null }
  | { ok: false; error: z.ZodError };

/** A plain-object schema's fields: name, schema, and the name as JSON (`"name"`). */
type Fields = readonly (readonly [key: string, schema: z.ZodType, json: string])[];

const shapes = new WeakMap<z.ZodType, Fields | null>();

/** The fields of a plain-object schema (validated field by field), or null. */
function plainShape(schema: z.ZodType): Fields | null {
  let fields = shapes.get(schema);
  if (fields === undefined) {
    const def = schema instanceof z.ZodObject ? schema._zod.def : null;
    fields =
      def && def.catchall === undefined && (def.checks?.length ?? 0) === 0
        ? Object.entries(def.shape as Record<string, z.ZodType>).map(
            ([key, field]) => [key, field, JSON.stringify(key)] as const,
          )
        : null;
    shapes.set(schema, fields);
  }
  return fields;
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" &&
  value !== null &&
  !Array.isArray(value) &&
  Object.getPrototypeOf(value) === Object.prototype;

/**
 * Validates `state` with `schema`. `known` are the parts of the state last validated (null:
 * none known); the result's `parts` are the new state's (null when the schema is not a plain
 * object), and `text` is what to store.
 */
export function validateState(
  schema: z.ZodType,
  state: unknown,
  known: StateParts | null,
): ValidatedState {
  const shape = plainShape(schema);
  if (!shape) return whole(schema, state, null);
  if (!isPlainObject(state)) return whole(schema, state, shape);
  const parts = new Map<string, string>();
  for (const [key, field] of shape) {
    const value = Object.hasOwn(state, key) ? state[key] : undefined;
    // A field left out may take a default, or may not be left out: the schema says which.
    if (value === undefined) return whole(schema, state, shape);
    let text: string | undefined;
    try {
      text = JSON.stringify(value);
    } catch {
      return whole(schema, state, shape); // not JSON (a BigInt, a cycle): the schema says why
    }
    if (text !== undefined && known?.get(key) === text) {
      parts.set(key, text);
      continue;
    }
    const parsed = field.safeParse(value);
    if (!parsed.success) return whole(schema, state, shape);
    const stored = JSON.stringify(parsed.data);
    if (stored !== undefined) parts.set(key, stored);
  }
  return { ok: true, text: compose(shape, parts), parts };
}

function whole(schema: z.ZodType, state: unknown, shape: Fields | null): ValidatedState {
  const parsed = schema.safeParse(state);
  if (!parsed.success) return { ok: false, error: parsed.error };
  if (!shape || !isPlainObject(parsed.data))
    return { ok: true, text: JSON.stringify(parsed.data), parts: null };
  const parts = new Map<string, string>();
  for (const [key] of shape) {
    const text = Object.hasOwn(parsed.data, key) ? JSON.stringify(parsed.data[key]) : undefined;
    if (text !== undefined) parts.set(key, text);
  }
  return { ok: true, text: compose(shape, parts), parts };
}

/** The JSON text of an object of these parts, in the shape's order (as JSON.stringify writes it). */
function compose(shape: Fields, parts: StateParts): string {
  const fields: string[] = [];
  for (const [key, , json] of shape) {
    const text = parts.get(key);
    if (text !== undefined) fields.push(`${json}:${text}`);
  }
  return `{${fields.join(",")}}`;
}
