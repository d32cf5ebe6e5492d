/**
 * Tools the agent can call. A tool declares its input schema (zod — also turned into the JSON
 * schema the model sees), whether a human must approve each call, and `execute`. Arguments
 * that do not parse become a tool error the model sees, never a crash.
 *
 * A synchronous `execute` runs inside the same SQLite transaction that records its result,
 * so it takes effect exactly once; an asynchronous one is claimed first and runs at most once
 * (if the object dies mid-call the outcome is reported as unknown, never run twice).
 */
import { z } from "zod";
import { issueText } from "../../errors/parse";
import type { JsonValue } from "../../streams/messages";
import { toolSpecSchema } from "../events";

export interface ToolContext {
  /** The session's own SQLite (the SessionAgent Durable Object's storage). */
  sql: SqlStorage;
  sessionId: string;
  toolCallId: string;
}

/** A tool as written: `execute` takes the parsed input of its own schema. */
export interface ToolDefinition<I extends z.ZodType> {
  name: string;
  description: string;
  input: I;
  needsApproval: boolean;
  execute(input: z.output<I>, context: ToolContext): JsonValue | Promise<JsonValue>;
}

/**
 * A tool as the registry holds it, its input type erased: `execute` takes the input that
 * `ToolRegistry.parseInput` produced and checks it against the schema again, so a registry
 * of tools with different inputs needs no cast.
 */
export interface Tool {
  name: string;
  description: string;
  input: z.ZodType;
  needsApproval: boolean;
  execute(input: unknown, context: ToolContext): JsonValue | Promise<JsonValue>;
}

export function defineTool<I extends z.ZodType>(tool: ToolDefinition<I>): Tool {
  if (!/^[a-z_][a-z0-9_]{0,63}$/.test(tool.name))
    throw new Error(`tool name ${JSON.stringify(tool.name)} is not snake_case`);
  return { ...tool, execute: (input, context) => tool.execute(tool.input.parse(input), context) };
}

export class ToolRegistry {
  readonly #tools = new Map<string, Tool>();
  /** Specs built so far (a tool's spec never changes; every model request sends them). */
  readonly #specs = new Map<string, z.output<typeof toolSpecSchema>>();

  constructor(tools: Tool[]) {
    for (const tool of tools) {
      if (this.#tools.has(tool.name)) throw new Error(`tool ${tool.name} is defined twice`);
      this.#tools.set(tool.name, tool);
    }
  }

  get(name: string): Tool | null {
    return this.#tools.get(name) ?? null;
  }

  names(): string[] {
    return [...this.#tools.keys()];
  }

  spec(name: string) {
    const known = this.#specs.get(name);
    if (known) return known;
    const tool = this.get(name);
    if (!tool) return null;
    const spec = toolSpecSchema.parse({
      name: tool.name,
      description: tool.description,
      inputSchema: z.toJSONSchema(tool.input),
    });
    this.#specs.set(name, spec);
    return spec;
  }

  needsApproval(name: string): boolean {
    return this.get(name)?.needsApproval ?? false;
  }

  /** Parses the model's raw argument text; a failure is returned as a message for the model. */
  parseInput(
    name: string,
    raw: string,
  ): { ok: true; input: unknown } | { ok: false; error: string } {
    const tool = this.get(name);
    if (!tool) return { ok: false, error: `unknown tool ${name}` };
    let value: unknown;
    try {
      value = raw.trim() === "" ? {} : JSON.parse(raw);
    } catch {
      return { ok: false, error: `arguments for ${name} are not valid JSON: ${raw.slice(0, 200)}` };
    }
    const parsed = tool.input.safeParse(value);
    if (!parsed.success) {
      return { ok: false, error: `invalid arguments for ${name} ${issueText(parsed.error)}` };
    }
    return { ok: true, input: parsed.data };
  }
}
