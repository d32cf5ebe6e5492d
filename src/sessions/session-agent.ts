/**
 * One SessionAgent Durable Object per session. It hosts the session's four processors as
 * plain fields (agent, model, tools, index), subscribed to the session stream, and exposes
 * the RPC the HTTP API needs (`SessionAgentRpc`, agent-rpc.ts). Every user action is an event
 * appended to the stream; the processors do the rest. Nothing needed to continue lives only
 * in memory: after a crash the constructor (and the alarm, kept armed while model requests
 * run) reconciles the model and tool processors from their reduced state, which re-executes
 * work that died mid-way.
 *
 * Roles live beside it: naming (naming.ts), identity and token generation (identity.ts), a
 * user's input (input.ts), the decision rule (decision.ts), transcript windows
 * (transcript-pages.ts), the D1 row (index-writer.ts), stream access (stream-access.ts).
 */
import { DurableObject } from "cloudflare:workers";
import { createDb } from "../db/client";
import { deleteSessionRow } from "../db/sessions-index";
import type { Env } from "../env";
import { conflict, DomainError, notFound } from "../errors/domain";
import { ProcessorHost } from "../processors/host";
import { type RpcResult, serveRpc } from "../rpc/result";
import type { DeliveryBatch } from "../streams/delivery";
import { streamName } from "../streams/naming";
import { trace } from "../trace";
import type {
  CreateSessionInput,
  SessionAgentRpc,
  SessionLive,
  StorageStats,
  TranscriptPage,
} from "./agent-rpc";
import { CatchUpError, catchUp, catchUpFailed } from "./catch-up";
import { type Decision, priorDecision, storedDecision } from "./decision";
import { type SessionEventPayload, sessionEvents } from "./events";
import { SessionIdentityStore } from "./identity";
import { writeIndexRow } from "./index-writer";
import { appendInput } from "./input";
import {
  SESSION_BINDING,
  SESSION_PROCESSORS,
  type SessionProcessor,
  sessionObjectName,
  sessionPath,
  sessionProcessorKey,
  sessionProcessorOfKey,
} from "./naming";
import type { AgentProcessor } from "./processors/agent";
import { effectiveStatus, type IndexProcessor } from "./processors/index-mirror";
import type { ModelProcessor } from "./processors/model";
import { registerSessionProcessors } from "./processors/register";
import { ToolProcessor } from "./processors/tools";
import { feedingAppends, processorStreams, type StreamAccess, streamAccess } from "./stream-access";
import { recentMessages, transcriptPage, transcriptStats } from "./transcript-pages";

const WATCHDOG_MS = 10_000;
/** How long an RPC waits for a processor to catch up before it answers that it could not. */
export const CATCH_UP_TIMEOUT_MS = 5_000;

export class SessionAgent extends DurableObject<Env> implements SessionAgentRpc {
  readonly host: ProcessorHost;
  readonly agent: AgentProcessor;
  readonly model: ModelProcessor;
  readonly tools: ToolProcessor;
  readonly index: IndexProcessor;
  readonly #self: SessionIdentityStore;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#self = new SessionIdentityStore(ctx.storage.sql);
    this.host = new ProcessorHost(ctx, processorStreams(env.STREAMS), {
      binding: SESSION_BINDING,
    });
    ({
      agent: this.agent,
      model: this.model,
      tools: this.tools,
      index: this.index,
    } = registerSessionProcessors(this.host, {
      env,
      storage: ctx.storage,
      sessionId: () => this.#self.get().sessionId,
      stream: () => this.#stream(),
      inFlight: () => this.ctx.waitUntil(this.#armWatchdog()),
      writeIndex: (row) => writeIndexRow(this.env.DB, this.#self.get(), row),
      ownKey: (key) => this.#processorOfKey(key) !== null,
      // A parked processor cannot catch up: whoever waits for it is told now.
      onParked: (parked) => {
        for (const entry of parked) {
          const processor = this.#processorOfKey(entry.key);
          if (processor) this.host.failWaiters(processor, catchUpFailed(processor, entry));
        }
      },
    }));
    // Resume work that was in flight when the object died. Not inside blockConcurrencyWhile:
    // deliveries are inbound calls, and a closed input gate would deadlock them.
    ctx.waitUntil(this.#resume());
  }

  #streamName() {
    const { tenant, sessionId } = this.#self.get();
    return streamName(tenant, sessionPath(sessionId));
  }

  #stream(): StreamAccess {
    return streamAccess(this.env.STREAMS, this.#streamName());
  }

  /** The session stream, its appends fed to the processors as soon as they are committed. */
  #fed(): Pick<StreamAccess, "appendBatch"> {
    const target = {
      stream: sessionPath(this.#self.get().sessionId),
      streamName: this.#streamName(),
    };
    return feedingAppends(this.#stream(), this.host, target);
  }

  /** Which of this session's processors a subscription key belongs to (null: none). */
  #processorOfKey(key: string): SessionProcessor | null {
    const identity = this.#self.orNull();
    return identity ? sessionProcessorOfKey(key, identity.tenant, identity.sessionId) : null;
  }

  /** Runs an RPC body and answers its result envelope (expected errors as values). */
  #call<T>(fn: () => Promise<T>): Promise<RpcResult<T>> {
    const where = this.#self.orNull()?.sessionId ?? "(new)";
    return serveRpc(`session ${where}`, fn);
  }

  // ---- RPC for the HTTP API -----------------------------------------------------------

  /** Creates the session: its stream, the processors' subscriptions, and `session/created`. */
  create(input: CreateSessionInput): Promise<RpcResult<SessionLive>> {
    return this.#call(async () => {
      const existing = this.#self.orNull();
      if (
        existing &&
        (existing.tenant !== input.tenant || existing.sessionId !== input.sessionId)
      ) {
        throw conflict("this session object already belongs to another session");
      }
      if (!existing) this.#self.claim(input.tenant, input.sessionId, Date.now());
      const name = this.#streamName();
      const stream = this.#stream();
      await stream.create(name, sessionPath(input.sessionId), { contentType: "application/json" });
      const hostName = sessionObjectName(input.tenant, input.sessionId);
      await Promise.all(
        SESSION_PROCESSORS.map((processor) =>
          this.host.subscribe(processor, { streamName: name, hostName, startAt: "beginning" }),
        ),
      );
      const payload: SessionEventPayload<"session/created"> = {
        title: input.title,
        model: input.model,
        system: input.system,
        tools: input.tools,
      };
      const [created] = await this.#fed().appendBatch([
        { type: "session/created", payload, idempotencyKey: "session/created" },
      ]);
      await writeIndexRow(this.env.DB, input, {
        title: input.title,
        status: "idle",
        model: input.model,
        createdAt: created!.createdAt,
        updatedAt: created!.createdAt,
        lastOffset: 0,
        pendingApprovalCount: 0,
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
      const { event, payload } = await appendInput(this.#fed(), content, idempotencyKey);
      trace("agent.input.appended", () => ({
        stream: this.#streamName(),
        offsets: [event.offset],
      }));
      // Queued = something before it is still unanswered (judged once the agent has seen it
      // all). The message is stored either way: if the agent cannot catch up (parked, or
      // behind past the timeout) it is reported queued (it is: nothing is answering it), and
      // the reason is logged; a parked agent also shows as the session's `failed` status.
      const caughtUp = await this.#catchUp("agent", event.offset - 1).then(
        () => true,
        (error: unknown) => {
          if (!(error instanceof CatchUpError)) throw error;
          console.warn(JSON.stringify({ msg: "input queued behind a stuck agent", ...error.log }));
          return false;
        },
      );
      trace("agent.input.caught-up", () => ({
        stream: this.#streamName(),
        offsets: [event.offset],
      }));
      // The agent may already be past the message (its turn can start in the same commit,
      // processors/fused-appends.ts): a running turn makes it queued only if it answers an
      // earlier message.
      const { turn, queue } = this.host.state<typeof this.agent.contract>("agent");
      const queued =
        !caughtUp ||
        queue.some((q) => q.offset < event.offset) ||
        (turn !== null && (turn.inputOffset === null || turn.inputOffset < event.offset));
      return { offset: event.offset, messageId: payload.messageId, queued };
    });
  }

  /**
   * Decides a tool call awaiting approval (the rule: decision.ts). Concurrent conflicting
   * decisions share one idempotency key: exactly one is stored. When the tools processor
   * cannot catch up with the stream, the answer says so (503) instead of judging stale state.
   */
  decide(
    toolCallId: string,
    approved: boolean,
    reason: string | null,
  ): Promise<RpcResult<Decision>> {
    return this.#call(async () => {
      await this.#catchUp("tools");
      const calls = this.host.state<typeof this.tools.contract>("tools").calls;
      // The id is the client's: only an own entry is a call in progress (`constructor` is not).
      const call = Object.hasOwn(calls, toolCallId)
        ? calls[toolCallId]!
        : ToolProcessor.finished(this.host.tables("tools"), toolCallId);
      const prior = priorDecision(call, toolCallId, approved);
      if (prior) return prior;
      const [event] = await this.#fed().appendBatch([
        {
          type: "tool/approval-decided",
          payload: { toolCallId, approved, reason },
          idempotencyKey: `decision:${toolCallId}`,
        },
      ]);
      const stored = sessionEvents["tool/approval-decided"].parse(event!.payload);
      return storedDecision(stored, toolCallId, approved);
    });
  }

  /** Requests cancellation of the running turn (its model request is aborted, approvals cancelled). */
  cancel(reason: string | null): Promise<RpcResult<{ offset: number }>> {
    return this.#call(async () => {
      const [event] = await this.#fed().appendBatch([
        { type: "session/cancel-requested", payload: { reason } },
      ]);
      return { offset: event!.offset };
    });
  }

  /** Deletes the session: `session/deleted`, then the stream is closed and the index row removed. */
  remove(): Promise<RpcResult<void>> {
    return this.#call(async () => {
      const { tenant, sessionId } = this.#self.get();
      const stream = this.#stream();
      const head = await stream.head();
      if (!head.closed) {
        const [deleted] = await this.#fed().appendBatch([
          { type: "session/deleted", payload: {}, idempotencyKey: "session/deleted" },
        ]);
        await stream.close({ status: "ended", reason: "session deleted" });
        // The index mirrors rows a moment late (index-mirror.ts): let it reach the deletion,
        // so that no row write still pending can bring the session back into the list.
        await this.host
          .waitForCheckpoint("index", deleted!.offset, CATCH_UP_TIMEOUT_MS)
          .catch((error: unknown) =>
            console.warn(
              JSON.stringify({
                msg: "index did not reach the deletion",
                session: sessionId,
                error: String(error),
              }),
            ),
          );
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
      const { tenant, sessionId } = this.#self.get();
      const stream = this.#stream();
      const key = sessionProcessorKey("index", tenant, sessionId);
      await stream.removeSubscription(key).catch((error: unknown) => {
        if (!(error instanceof DomainError && error.code === "not_found")) throw error;
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
      this.#self.get();
      const summary = this.host.state<typeof this.agent.contract>("agent").summary;
      if (summary.status === "deleted") throw notFound("session not found");
      return this.#self.tokenGeneration();
    });
  }

  /** Revokes every token minted so far: they carry the old generation. */
  revokeTokens(): Promise<RpcResult<{ generation: number }>> {
    return this.#call(async () => {
      this.#self.get();
      return { generation: this.#self.nextTokenGeneration() };
    });
  }

  /** A page of the transcript from message index `from` (GET /v1/sessions/:id/messages). */
  messages(from: number, limit: number): Promise<RpcResult<TranscriptPage>> {
    return this.#call(async () => {
      this.#self.get();
      return transcriptPage(this.host.tables("agent"), from, limit);
    });
  }

  /** Storage of this object (SQLite bytes) and of its transcript, for operators and benches. */
  storageStats(): Promise<RpcResult<StorageStats>> {
    return this.#call(async () => {
      this.#self.get();
      return {
        databaseSize: this.ctx.storage.sql.databaseSize,
        ...transcriptStats(this.host.tables("agent")),
      };
    });
  }

  async #live(): Promise<SessionLive> {
    const { sessionId } = this.#self.get();
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
      ...recentMessages(this.host.tables("agent")),
      lastOffset: checkpoint,
    };
  }

  /** The callable's method: deliveries from the session stream. */
  deliver(batch: DeliveryBatch): Promise<RpcResult<{ ackOffset: number }>> {
    return this.host.deliver(batch);
  }

  // ---- crash recovery -----------------------------------------------------------------

  override async alarm(): Promise<void> {
    await this.#resume();
  }

  async #resume(): Promise<void> {
    const identity = this.#self.orNull();
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

  /** Waits until the processor has consumed the stream through `upTo` (default: as it is now). */
  async #catchUp(processor: SessionProcessor, upTo?: number): Promise<void> {
    const stream = this.#stream();
    const target = upTo ?? (await stream.head()).lastOffset;
    const { tenant, sessionId } = this.#self.get();
    const key = sessionProcessorKey(processor, tenant, sessionId);
    await catchUp(this.host, stream, processor, key, target, CATCH_UP_TIMEOUT_MS);
  }
}
