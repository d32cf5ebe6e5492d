/**
 * The four processors a SessionAgent hosts, registered on its host and wired to what they
 * need from the session around them (the stream's events, the model registry, the agent's
 * transcript, storage, the D1 row, the watchdog). Kept apart from the Durable Object so the
 * object holds its RPC and recovery, and this file the processors' dependencies.
 */
import { type Env, readModelSettings, readSettings } from "../../env";
import type { ProcessorHost } from "../../processors/host";
import type { ParkedSubscription } from "../contracts";
import { sessionEvents } from "../events";
import { contextBudgetBytes, resolveModel } from "../models/registry";
import { toolSpecs } from "../obligations";
import type { StreamAccess } from "../stream-access";
import { builtinTools } from "../tools/builtin";
import { AgentProcessor } from "./agent";
import { IndexProcessor, type IndexRow } from "./index-mirror";
import { ModelProcessor } from "./model";
import { ToolProcessor } from "./tools";

const MODEL_MAX_ATTEMPTS = 4;

export interface SessionProcessorDeps {
  env: Env;
  storage: DurableObjectStorage;
  sessionId(): string;
  /** The session stream (the model processor reads its requests from it). */
  stream(): Pick<StreamAccess, "read">;
  /** A model request is in flight (the owner keeps a watchdog alarm armed). */
  inFlight(): void;
  writeIndex(row: IndexRow): Promise<void>;
  /** Whether a subscription key is one of this session's own processors. */
  ownKey(key: string): boolean;
  /** After each index batch: the session's own subscriptions that are parked. */
  onParked(parked: ParkedSubscription[]): void;
}

export function registerSessionProcessors(host: ProcessorHost, deps: SessionProcessorDeps) {
  const { env } = deps;
  const agent = host.register("agent", new AgentProcessor(builtinTools));
  const model = host.register(
    "model",
    new ModelProcessor({
      resolve: (spec) => resolveModel(spec, readModelSettings(env)),
      readRequest: async (offset) => {
        const { events } = await deps.stream().read({ after: offset - 1, limit: 1 });
        const event = events[0];
        if (event?.type !== "model/request-requested")
          throw new Error(`no model request at offset ${offset}`);
        return sessionEvents["model/request-requested"].parse(event.payload);
      },
      readEvent: async (offset) => {
        const { events } = await deps.stream().read({ after: offset - 1, limit: 1 });
        return events[0];
      },
      contentBudgetBytes: readSettings(env).MODEL_CONTENT_MAX_BYTES,
      inFlight: deps.inFlight,
      maxAttempts: MODEL_MAX_ATTEMPTS,
      retryBaseMs: readSettings(env).MODEL_RETRY_BASE_MS,
      waitForHistory: async (offset) => {
        await host.waitForCheckpoint("agent", offset);
        await host.waitForCheckpoint("model", offset);
      },
      session: () => {
        const config = host.state<typeof agent.contract>("agent").config;
        return {
          system: config?.system ?? "",
          tools: toolSpecs(config?.tools ?? [], builtinTools),
        };
      },
      transcript: () => host.tables("agent"),
      tables: () => host.tables("model"),
      contextBudget: (spec) => contextBudgetBytes(spec, readModelSettings(env)),
    }),
  );
  const tools = host.register(
    "tools",
    new ToolProcessor(builtinTools, { storage: deps.storage, sessionId: deps.sessionId }),
  );
  const index = host.register(
    "index",
    new IndexProcessor(deps.writeIndex, deps.ownKey, deps.onParked),
  );
  return { agent, model, tools, index };
}
