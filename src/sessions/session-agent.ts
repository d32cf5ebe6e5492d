/**
 * One SessionAgent Durable Object per session. It hosts the session's four processors as
 * plain fields (agent, model, tools, index), subscribed to the session stream, and exposes
 * the RPC the HTTP API needs. Every user action is an event appended to the stream; the
 * processors do the rest. Nothing needed to continue lives only in memory: after a crash the
 * constructor (and the alarm, kept armed while model requests run) reconciles the model and
 * tool processors from their reduced state, which re-executes work that died mid-way.
 */
import { DurableObject } from "cloudflare:workers";
import { ulid } from "ulidx";
import { z } from "zod";
import { createDb } from "../db/client";
import { deleteSessionRow, upsertSessionRow } from "../db/sessions-index";
import { type Env, readSettings } from "../env";
import { ApiError, conflict, notFound } from "../http/errors";
import { ProcessorHost, subscriptionKeyFor } from "../processors/host";
import { type RpcResult, rpcClient, serveRpc, type Unwrapped } from "../rpc/result";
import type { DeliveryBatch } from "../streams/delivery";
import type { StreamEvent } from "../streams/messages";
import { streamName } from "../streams/naming";
import type { StreamRpc } from "../streams/stream-rpc";
import { streamStub } from "../streams/stub";
import { trace } from "../trace";
import {
  CHUNK_EVENT,
  MAX_INPUT_CONTENT_BYTES,
  needsChunks,
  storeContent,
  utf8Bytes,
} from "./content";
import { toolSpecs } from "./conversation";
import { type ChatMessage, type SessionEventPayload, sessionEvents } from "./events";
import { contextBudgetBytes, resolveModel } from "./models/registry";
import { sessionObjectName, sessionPath } from "./naming";
import { AgentProcessor } from "./processors/agent";
import { effectiveStatus, IndexProcessor, type IndexRow } from "./processors/index-mirror";
import { ModelProcessor } from "./processors/model";
import { ToolProcessor } from "./processors/tools";
import type { SessionSummary } from "./summary";
import { builtinTools } from "./tools/builtin";
import { messageCount, messageSizes, readMessages } from "./transcript";

export const SESSION_BINDING = "SESSIONS";

/** The SessionAgent's RPC surface (spelled out: the generated stub type is too deep for tsc). */
export type SessionAgentRpc = Pick<
  SessionAgent,
  | "create"
  | "live"
  | "messages"
  | "storageStats"
  | "sendMessage"
  | "decide"
  | "cancel"
  | "remove"
  | "reindex"
  | "tokenGeneration"
  | "revokeTokens"
>;
/** `live.messages` is the newest messages, at most this many and this many bytes. */
export const LIVE_MESSAGES = 20;
export const LIVE_MESSAGE_BYTES = 256 * 1024;
/** A page of `messages()` holds at most this many bytes of content (and at least one message). */
export const MESSAGE_PAGE_BYTES = 1024 * 1024;
const PROCESSORS = ["agent", "model", "tools", "index"] as const;
const MODEL_MAX_ATTEMPTS = 4;
const WATCHDOG_MS = 10_000;
const CATCH_UP_TIMEOUT_MS = 5_000;

export { SESSION_STREAMS, sessionObjectName, sessionPath } from "./naming";

const identitySchema = z.object({
  tenant: z.string(),
  session_id: z.string(),
  created_at: z.number(),
});

export interface CreateSessionInput {
  tenant: string;
  sessionId: string;
  title: string;
  model: string;
  system: string;
  tools: string[];
}

export interface SessionLive {
  id: string;
  status: SessionSummary["status"];
  title: string;
  model: string;
  pendingApprovals: SessionSummary["pendingApprovals"];
  queuedMessages: number;
  lastError: string | null;
  /**
   * The newest messages of the transcript (at most LIVE_MESSAGES and LIVE_MESSAGE_BYTES; the
   * whole transcript is paged by `messages()`, GET /v1/sessions/:id/messages).
   */
  messages: ChatMessage[];
  /** How many messages the transcript holds, and the index of `messages[0]`. */
  messageCount: number;
  messagesFrom: number;
  lastOffset: number;
}

export interface TranscriptPage {
  messages: (ChatMessage & { index: number })[];
  messageCount: number;
  /** Index to ask for next, or null at the end of the transcript. */
  next: number | null;
}

/** The session stream's RPC, unwrapped (values, or ApiErrors thrown on this side). */
type StreamClient = Unwrapped<StreamRpc>;

export class SessionAgent extends DurableObject<Env> {
  readonly host: ProcessorHost;
  readonly agent: AgentProcessor;
  readonly model: ModelProcessor;
  readonly tools: ToolProcessor;
  readonly index: IndexProcessor;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(
      "CREATE TABLE IF NOT EXISTS session_identity (singleton INTEGER PRIMARY KEY CHECK (singleton = 1), tenant TEXT NOT NULL, session_id TEXT NOT NULL, created_at INTEGER NOT NULL)",
    );
    ctx.storage.sql.exec(
      "CREATE TABLE IF NOT EXISTS session_token_generation (singleton INTEGER PRIMARY KEY CHECK (singleton = 1), generation INTEGER NOT NULL)",
    );
    this.host = new ProcessorHost(ctx, env, { binding: SESSION_BINDING });
    this.agent = this.host.register("agent", new AgentProcessor(builtinTools));
    this.model = this.host.register(
      "model",
      new ModelProcessor({
        resolve: (spec) => resolveModel(spec, env),
        readRequest: (offset) => this.#readRequest(offset),
        readEvent: (offset) => this.#readEvent(offset),
        contentBudgetBytes: readSettings(env).MODEL_CONTENT_MAX_BYTES,
        inFlight: () => this.ctx.waitUntil(this.#armWatchdog()),
        maxAttempts: MODEL_MAX_ATTEMPTS,
        retryBaseMs: readSettings(env).MODEL_RETRY_BASE_MS,
        waitForHistory: async (offset) => {
          await this.host.waitForCheckpoint("agent", offset);
          await this.host.waitForCheckpoint("model", offset);
        },
        session: () => {
          const config = this.host.state<typeof this.agent.contract>("agent").config;
          return {
            system: config?.system ?? "",
            tools: toolSpecs(config?.tools ?? [], builtinTools),
          };
        },
        transcript: () => this.host.tables("agent"),
        tables: () => this.host.tables("model"),
        contextBudget: (model) => contextBudgetBytes(model, env),
      }),
    );
    this.tools = this.host.register(
      "tools",
      new ToolProcessor(builtinTools, {
        storage: ctx.storage,
        sessionId: () => this.#identity().sessionId,
      }),
    );
    this.index = this.host.register(
      "index",
      new IndexProcessor(
        (row) => this.#writeIndex(row),
        (key) => this.#ownKey(key),
      ),
    );
    // Resume work that was in flight when the object died. Not inside blockConcurrencyWhile:
    // deliveries are inbound calls, and a closed input gate would deadlock them.
    ctx.waitUntil(this.#resume());
  }

  // ---- identity -----------------------------------------------------------------------

  #identityOrNull(): { tenant: string; sessionId: string; createdAt: number } | null {
    const row = this.ctx.storage.sql
      .exec("SELECT tenant, session_id, created_at FROM session_identity")
      .toArray()[0];
    if (!row) return null;
    const parsed = identitySchema.parse(row);
    return { tenant: parsed.tenant, sessionId: parsed.session_id, createdAt: parsed.created_at };
  }

  #identity() {
    const identity = this.#identityOrNull();
    if (!identity) throw notFound("session not found");
    return identity;
  }

  #streamName() {
    const { tenant, sessionId } = this.#identity();
    return streamName(tenant, sessionPath(sessionId));
  }

  #stream(): StreamClient {
    return rpcClient(streamStub(this.env, this.#streamName()));
  }

  /** Whether a subscription key belongs to one of this session's processors. */
  #ownKey(key: string): boolean {
    const identity = this.#identityOrNull();
    if (!identity) return false;
    const host = sessionObjectName(identity.tenant, identity.sessionId);
    return PROCESSORS.some((p) => key === subscriptionKeyFor(p, SESSION_BINDING, host));
  }

  /** Runs an RPC body and answers its result envelope (expected errors as values). */
  #call<T>(fn: () => Promise<T>): Promise<RpcResult<T>> {
    const where = this.#identityOrNull()?.sessionId ?? "(new)";
    return serveRpc(`session ${where}`, fn);
  }

  // ---- RPC for the HTTP API -----------------------------------------------------------

  /** Creates the session: its stream, the processors' subscriptions, and `session/created`. */
  create(input: CreateSessionInput): Promise<RpcResult<SessionLive>> {
    return this.#call(async () => {
      const existing = this.#identityOrNull();
      if (
        existing &&
        (existing.tenant !== input.tenant || existing.sessionId !== input.sessionId)
      ) {
        throw conflict("this session object already belongs to another session");
      }
      const now = Date.now();
      if (!existing) {
        this.ctx.storage.sql.exec(
          "INSERT INTO session_identity (singleton, tenant, session_id, created_at) VALUES (1, ?, ?, ?)",
          input.tenant,
          input.sessionId,
          now,
        );
      }
      const name = this.#streamName();
      const stream = this.#stream();
      await stream.create(name, sessionPath(input.sessionId), { contentType: "application/json" });
      const hostName = sessionObjectName(input.tenant, input.sessionId);
      await Promise.all(
        PROCESSORS.map((processor) =>
          this.host.subscribe(processor, { streamName: name, hostName, startAt: "beginning" }),
        ),
      );
      const payload: SessionEventPayload<"session/created"> = {
        title: input.title,
        model: input.model,
        system: input.system,
        tools: input.tools,
      };
      const [created] = await stream.appendBatch([
        { type: "session/created", payload, idempotencyKey: "session/created" },
      ]);
      await this.#writeIndex({
        title: input.title,
        status: "idle",
        model: input.model,
        createdAt: created!.createdAt,
        updatedAt: created!.createdAt,
        lastOffset: 0,
        pendingApprovals: 0,
        lastError: null,
      });
      return this.#live();
    });
  }

  /** Adds a user message. While a turn runs, it is queued and answered after that turn. */
  sendMessage(
    content: string,
    idempotencyKey?: string,
  ): Promise<RpcResult<{ offset: number; messageId: string; queued: boolean }>> {
    return this.#call(async () => {
      const summary = this.host.state<typeof this.agent.contract>("agent").summary;
      if (summary.status === "deleted") throw notFound("session not found");
      const bytes = utf8Bytes(content);
      if (content === "" || bytes > MAX_INPUT_CONTENT_BYTES)
        throw new ApiError(
          content === "" ? 400 : 413,
          content === "" ? "validation_failed" : "payload_too_large",
          content === ""
            ? "a message needs content"
            : `content of ${bytes} bytes exceeds the ${MAX_INPUT_CONTENT_BYTES}-byte limit of a message`,
        );
      const messageId = idempotencyKey ? `msg-${idempotencyKey}` : `msg-${ulid()}`;
      const stream = this.#stream();
      // Large content goes first, as chunk events (bounded appends, keyed by the message).
      const keyBase = idempotencyKey ? `input:${idempotencyKey}` : `input-${messageId}`;
      const contentRef = needsChunks(content)
        ? await storeContent(messageId, content, async (chunks) =>
            (
              await stream.appendBatch(
                chunks.map((chunk) => ({
                  type: CHUNK_EVENT,
                  payload: chunk,
                  idempotencyKey: `${keyBase}/chunk-${chunk.index}`,
                })),
              )
            ).map((e) => e.offset),
          )
        : undefined;
      const [event] = await stream.appendBatch([
        {
          type: "session/input-added",
          payload: contentRef ? { messageId, content: "", contentRef } : { messageId, content },
          ...(idempotencyKey ? { idempotencyKey: `input:${idempotencyKey}` } : {}),
        },
      ]);
      trace("agent.input.appended", () => ({
        stream: this.#streamName(),
        offsets: [event!.offset],
      }));
      const payload = sessionEvents["session/input-added"].parse((event as StreamEvent).payload);
      // Queued = something before it is still unanswered (judged once the agent has seen it all).
      await this.#catchUp("agent", event!.offset - 1);
      trace("agent.input.caught-up", () => ({
        stream: this.#streamName(),
        offsets: [event!.offset],
      }));
      const state = this.host.state<typeof this.agent.contract>("agent");
      const queued = state.turn !== null || state.queue.some((q) => q.offset < event!.offset);
      return { offset: event!.offset, messageId: payload.messageId, queued };
    });
  }

  /**
   * Decides a tool call awaiting approval. Unknown call → 404; a call that is not pending →
   * 409, except that repeating the decision already taken is an idempotent success.
   * Concurrent conflicting decisions share one idempotency key: exactly one is stored.
   */
  decide(
    toolCallId: string,
    approved: boolean,
    reason: string | null,
  ): Promise<RpcResult<{ toolCallId: string; approved: boolean; reason: string | null }>> {
    return this.#call(async () => {
      await this.#catchUp("tools");
      const calls = this.host.state<typeof this.tools.contract>("tools").calls;
      // The id is the client's: only an own entry is a call in progress (`constructor` is not).
      const call = Object.hasOwn(calls, toolCallId)
        ? calls[toolCallId]!
        : ToolProcessor.finished(this.host.tables("tools"), toolCallId);
      if (!call) throw notFound(`tool call ${toolCallId} not found`);
      const decided = call.decision;
      if (decided) {
        if (decided.approved === approved) return { toolCallId, approved, reason: decided.reason };
        throw conflict(
          `tool call ${toolCallId} was already ${decided.approved ? "approved" : "denied"}`,
        );
      }
      if (call.status !== "needs-approval" && call.status !== "awaiting") {
        throw conflict(`tool call ${toolCallId} is not awaiting approval (it is ${call.status})`);
      }
      const [event] = await this.#stream().appendBatch([
        {
          type: "tool/approval-decided",
          payload: { toolCallId, approved, reason },
          idempotencyKey: `decision:${toolCallId}`,
        },
      ]);
      const stored = sessionEvents["tool/approval-decided"].parse(event!.payload);
      if (stored.approved !== approved) {
        throw conflict(
          `tool call ${toolCallId} was already ${stored.approved ? "approved" : "denied"}`,
        );
      }
      return { toolCallId, approved, reason: stored.reason };
    });
  }

  /** Requests cancellation of the running turn (its model request is aborted, approvals cancelled). */
  cancel(reason: string | null): Promise<RpcResult<{ offset: number }>> {
    return this.#call(async () => {
      const [event] = await this.#stream().appendBatch([
        { type: "session/cancel-requested", payload: { reason } },
      ]);
      return { offset: event!.offset };
    });
  }

  /** Deletes the session: `session/deleted`, then the stream is closed and the index row removed. */
  remove(): Promise<RpcResult<void>> {
    return this.#call(async () => {
      const { tenant, sessionId } = this.#identity();
      const stream = this.#stream();
      const head = await stream.head();
      if (!head.closed) {
        await stream.appendBatch([
          { type: "session/deleted", payload: {}, idempotencyKey: "session/deleted" },
        ]);
        await stream.close({ status: "ended", reason: "session deleted" });
      }
      await deleteSessionRow(createDb(this.env.DB), tenant, sessionId);
    });
  }

  /**
   * Rebuilds this session's D1 row from its stream: the index processor's state is dropped
   * and its subscription configured anew from the beginning, so every event is reduced again
   * (as history: no side effects but the row write of each batch).
   */
  reindex(): Promise<RpcResult<void>> {
    return this.#call(async () => {
      const { tenant, sessionId } = this.#identity();
      const stream = this.#stream();
      const key = subscriptionKeyFor(
        "index",
        SESSION_BINDING,
        sessionObjectName(tenant, sessionId),
      );
      await stream.removeSubscription(key).catch((error: unknown) => {
        if (!(error instanceof ApiError && error.status === 404)) throw error;
      });
      this.host.reset("index");
      await this.host.subscribe("index", {
        streamName: this.#streamName(),
        hostName: sessionObjectName(tenant, sessionId),
        startAt: "beginning",
      });
    });
  }

  live(): Promise<RpcResult<SessionLive>> {
    return this.#call(async () => this.#live());
  }

  // ---- session tokens (src/auth/session-tokens.ts) --------------------------------------

  /**
   * The generation session tokens are minted with and checked against; 404 once the session
   * is deleted (which ends its tokens) or when it never existed.
   */
  tokenGeneration(): Promise<RpcResult<number>> {
    return this.#call(async () => {
      this.#identity();
      const summary = this.host.state<typeof this.agent.contract>("agent").summary;
      if (summary.status === "deleted") throw notFound("session not found");
      return this.#generation();
    });
  }

  /** Revokes every token minted so far: they carry the old generation. */
  revokeTokens(): Promise<RpcResult<{ generation: number }>> {
    return this.#call(async () => {
      this.#identity();
      const generation = this.#generation() + 1;
      this.ctx.storage.sql.exec(
        "INSERT INTO session_token_generation (singleton, generation) VALUES (1, ?) ON CONFLICT (singleton) DO UPDATE SET generation = excluded.generation",
        generation,
      );
      return { generation };
    });
  }

  #generation(): number {
    const row = this.ctx.storage.sql
      .exec("SELECT generation FROM session_token_generation")
      .toArray()[0];
    return row ? z.object({ generation: z.number().int().nonnegative() }).parse(row).generation : 0;
  }

  /** A page of the transcript from message index `from` (GET /v1/sessions/:id/messages). */
  messages(from: number, limit: number): Promise<RpcResult<TranscriptPage>> {
    return this.#call(async () => {
      this.#identity();
      const tables = this.host.tables("agent");
      const total = messageCount(tables);
      // Choose the page by size first, so a page of huge messages reads only what it returns.
      const sizes = messageSizes(tables, from, Math.min(total, from + limit));
      let bytes = 0;
      let end = from;
      for (const m of sizes) {
        if (end > from && bytes + m.bytes > MESSAGE_PAGE_BYTES) break;
        bytes += m.bytes;
        end = m.index + 1;
      }
      const page: TranscriptPage["messages"] = readMessages(tables, from, end).map((m) => ({
        index: m.index,
        ...m.message,
      }));
      const last = page.at(-1)?.index;
      const next = last === undefined ? null : last + 1 < total ? last + 1 : null;
      return { messages: page, messageCount: total, next };
    });
  }

  /** Storage of this object (SQLite bytes) and of its transcript, for operators and benches. */
  storageStats(): Promise<
    RpcResult<{ databaseSize: number; transcriptBytes: number; messageCount: number }>
  > {
    return this.#call(async () => {
      this.#identity();
      const tables = this.host.tables("agent");
      const row = tables
        .exec<{ bytes: number | null; n: number }>(
          `SELECT sum(bytes) AS bytes, count(*) AS n FROM ${tables.name("messages")}`,
        )
        .one();
      return {
        databaseSize: this.ctx.storage.sql.databaseSize,
        transcriptBytes: row.bytes ?? 0,
        messageCount: row.n,
      };
    });
  }

  async #live(): Promise<SessionLive> {
    const { sessionId } = this.#identity();
    const { state, checkpoint } = this.host.snapshot<typeof this.agent.contract>("agent");
    // A parked processor (known durably to the index processor) makes the session failed.
    const { parked } = this.host.state<typeof this.index.contract>("index");
    const { status, lastError } = effectiveStatus(state.summary, parked);
    return {
      id: sessionId,
      status,
      title: state.summary.title,
      model: state.summary.model,
      pendingApprovals: state.summary.pendingApprovals,
      queuedMessages: state.queue.length,
      lastError,
      ...this.#recentMessages(),
      lastOffset: checkpoint,
    };
  }

  /** The newest messages within LIVE_MESSAGES and LIVE_MESSAGE_BYTES. */
  #recentMessages(): Pick<SessionLive, "messages" | "messageCount" | "messagesFrom"> {
    const tables = this.host.tables("agent");
    const total = messageCount(tables);
    const recent = messageSizes(tables, Math.max(0, total - LIVE_MESSAGES), total);
    let bytes = 0;
    let first = recent.length;
    // At least the newest message (inline content is at most 64 KiB, or ~100 KB in events
    // from before chunking; larger content is a ref the client reads from the stream).
    while (
      first > 0 &&
      (first === recent.length || bytes + recent[first - 1]!.bytes <= LIVE_MESSAGE_BYTES)
    ) {
      first -= 1;
      bytes += recent[first]!.bytes;
    }
    const from = recent[first]?.index ?? total;
    return {
      messages: readMessages(tables, from, total).map((m) => m.message),
      messageCount: total,
      messagesFrom: from,
    };
  }

  /** The callable's method: deliveries from the session stream. */
  deliver(batch: DeliveryBatch) {
    return this.host.deliver(batch);
  }

  // ---- crash recovery -----------------------------------------------------------------

  override async alarm(): Promise<void> {
    await this.#resume();
  }

  async #resume(): Promise<void> {
    const identity = this.#identityOrNull();
    if (!identity) return;
    const stream = { stream: sessionPath(identity.sessionId), streamName: this.#streamName() };
    try {
      await this.#stream().resumeDeliveries();
      await this.host.reconcile("tools", stream);
      await this.host.reconcile("model", stream);
    } catch (error) {
      console.error(
        JSON.stringify({
          msg: "session resume failed",
          session: identity.sessionId,
          error: String(error),
        }),
      );
    }
    await this.#armWatchdog();
  }

  /** Keeps an alarm armed while model requests are outstanding, so a crash cannot strand them. */
  async #armWatchdog(): Promise<void> {
    const outstanding = Object.keys(
      this.host.state<typeof this.model.contract>("model").requests,
    ).length;
    if (outstanding === 0 && this.model.running === 0) return;
    const next = Date.now() + WATCHDOG_MS;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > next) await this.ctx.storage.setAlarm(next);
  }

  /** Waits until the processor's subscription has consumed the stream as it is now. */
  async #catchUp(processor: (typeof PROCESSORS)[number], upTo?: number): Promise<void> {
    const stream = this.#stream();
    const target = upTo ?? (await stream.head()).lastOffset;
    const { tenant, sessionId } = this.#identity();
    const key = subscriptionKeyFor(
      processor,
      SESSION_BINDING,
      sessionObjectName(tenant, sessionId),
    );
    const deadline = Date.now() + CATCH_UP_TIMEOUT_MS;
    for (;;) {
      const sub = (await stream.listSubscriptions()).find((s) => s.key === key);
      if (!sub || sub.cursor >= target || Date.now() > deadline) return;
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async #readEvent(offset: number): Promise<StreamEvent | undefined> {
    const { events } = await this.#stream().read({ after: offset - 1, limit: 1 });
    return events[0];
  }

  async #readRequest(offset: number): Promise<SessionEventPayload<"model/request-requested">> {
    const { events } = await this.#stream().read({ after: offset - 1, limit: 1 });
    const event = events[0];
    if (event?.type !== "model/request-requested")
      throw new Error(`no model request at offset ${offset}`);
    return sessionEvents["model/request-requested"].parse(event.payload);
  }

  async #writeIndex(row: IndexRow): Promise<void> {
    const { tenant, sessionId } = this.#identity();
    const db = createDb(this.env.DB);
    if (row.status === "deleted") {
      await deleteSessionRow(db, tenant, sessionId);
      return;
    }
    await upsertSessionRow(db, {
      id: sessionId,
      tenantId: tenant,
      title: row.title,
      status: row.status as never,
      model: row.model,
      createdAt: Date.parse(row.createdAt),
      updatedAt: Date.parse(row.updatedAt),
      lastOffset: row.lastOffset,
      pendingApprovals: row.pendingApprovals,
      lastError: row.lastError,
    });
  }
}
