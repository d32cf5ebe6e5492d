/**
 * The capnweb client of the session API (`/v1/rpc`), for browsers and Node.
 *
 * - `rpcBatch(url, credential)`: one HTTP batch. Calls made before the first `await` travel
 *   together, results of earlier calls feeding later ones (promise pipelining): create a
 *   session and send its first message in one round trip.
 * - `LiveRpc`: a WebSocket session that stays usable across disconnects. It authenticates
 *   in-band, pings as a heartbeat (the server closes silent connections), reconnects with
 *   backoff, and `follow()` re-subscribes after the last offset it delivered, so a handler
 *   sees every event exactly once in order, however often the connection drops.
 *
 * Types come from the server's RPC classes (type-only import).
 */

import { newHttpBatchRpcSession, newWebSocketRpcSession, type RpcStub } from "capnweb";
import { backoffMs, EQUAL_JITTER } from "../backoff";
import type { RpcGateway, SessionsRpc } from "../rpc/api";
import type { SessionEvent } from "./types";

export type { SessionsRpc };

/** An HTTP batch session, already authenticated (pipelined: no extra round trip). */
export function rpcBatch(url: string, credential: string) {
  const gateway = newHttpBatchRpcSession<RpcGateway>(url);
  return gateway.authenticate(credential);
}

export interface LiveRpcOptions {
  /** The `/v1/rpc` URL (`ws:`/`wss:` or `http:`/`https:`; the latter is converted). */
  url: string;
  /** An API key or a scoped session token, or a function returning a fresh one. */
  credential: string | (() => string | Promise<string>);
  /** Heartbeat period (default 30 s; keep it well under the server's idle timeout). */
  heartbeatMs?: number;
  /** Reconnect backoff bounds (default 250 ms doubling up to 10 s). */
  minRetryMs?: number;
  maxRetryMs?: number;
  /** Opens the socket (default `new WebSocket(url)`); tests use it to reach the raw socket. */
  webSocket?: (url: string) => WebSocket;
  /** Told about every lost connection, before the reconnect. */
  onDisconnect?: (error: unknown) => void;
}

export interface Follow {
  /** The offset of the last event delivered to the handler. */
  readonly lastOffset: number;
  /** Settles when the session's stream ends (deleted); rejects on a lasting error (401, 404). */
  readonly done: Promise<void>;
  close(): void;
}

interface FollowState {
  sessionId: string;
  lastOffset: number;
  onEvent: (event: SessionEvent) => unknown;
  closed: boolean;
  /** A subscription of this follow is open (or opening) on the current connection. */
  active: boolean;
  subscription: { close(): unknown } | null;
  resolve: () => void;
  reject: (error: unknown) => void;
}

type Api = RpcStub<SessionsRpc>;

export class LiveRpc {
  readonly #options: LiveRpcOptions;
  #api: Promise<Api> | null = null;
  #socketClose: (() => void) | null = null;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #failures = 0;
  #closed = false;
  #reconnecting = false;
  readonly #follows = new Set<FollowState>();

  constructor(options: LiveRpcOptions) {
    this.#options = options;
  }

  /** The authenticated API of the current connection (connecting if needed). */
  api(): Promise<Api> {
    if (this.#closed) return Promise.reject(new Error("LiveRpc is closed"));
    this.#api ??= this.#connect();
    return this.#api;
  }

  /**
   * Calls `onEvent` with each event of the session after `after`, in order and exactly once,
   * across reconnects. Events reach the handler one at a time (the next waits for it).
   */
  follow(sessionId: string, after: number, onEvent: (event: SessionEvent) => unknown): Follow {
    let resolve!: () => void;
    let reject!: (error: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    done.catch(() => {});
    const state: FollowState = {
      sessionId,
      lastOffset: after,
      onEvent,
      closed: false,
      active: false,
      subscription: null,
      resolve,
      reject,
    };
    this.#follows.add(state);
    void this.#subscribe(state);
    const follows = this.#follows;
    return {
      get lastOffset() {
        return state.lastOffset;
      },
      done,
      close() {
        state.closed = true;
        follows.delete(state);
        state.subscription?.close();
        resolve();
      },
    };
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#heartbeat);
    for (const state of this.#follows) {
      state.closed = true;
      state.resolve();
    }
    this.#follows.clear();
    this.#socketClose?.();
  }

  async #connect(): Promise<Api> {
    const url = this.#options.url.replace(/^http/, "ws");
    const socket = this.#options.webSocket?.(url) ?? new WebSocket(url);
    const gateway = newWebSocketRpcSession<RpcGateway>(socket);
    this.#socketClose = () => gateway[Symbol.dispose]();
    let lost = false;
    const onLost = (error: unknown) => {
      if (lost) return;
      lost = true;
      clearInterval(this.#heartbeat);
      this.#api = null;
      if (this.#closed) return;
      this.#options.onDisconnect?.(error);
      this.#failures++;
      void this.#resubscribeAll();
    };
    gateway.onRpcBroken(onLost);
    const credential =
      typeof this.#options.credential === "function"
        ? await this.#options.credential()
        : this.#options.credential;
    const api = gateway.authenticate(credential);
    try {
      await api.ping();
    } catch (error) {
      gateway[Symbol.dispose]();
      this.#api = null;
      throw error;
    }
    this.#failures = 0;
    clearInterval(this.#heartbeat);
    this.#heartbeat = setInterval(() => {
      api.ping().catch(onLost);
    }, this.#options.heartbeatMs ?? 30_000);
    return api;
  }

  async #resubscribeAll(): Promise<void> {
    if (this.#reconnecting) return;
    this.#reconnecting = true;
    const min = this.#options.minRetryMs ?? 250;
    const max = this.#options.maxRetryMs ?? 10_000;
    const delay = backoffMs(this.#failures, { baseMs: min, maxMs: max, jitter: EQUAL_JITTER });
    await new Promise((r) => setTimeout(r, delay));
    this.#reconnecting = false;
    if (this.#closed) return;
    for (const state of this.#follows) if (!state.active) void this.#subscribe(state);
  }

  async #subscribe(state: FollowState): Promise<void> {
    if (state.closed || this.#closed || state.active) return;
    state.active = true;
    try {
      await this.#subscribeOnce(state);
    } finally {
      state.active = false;
    }
  }

  async #subscribeOnce(state: FollowState): Promise<void> {
    let api: Api;
    try {
      api = await this.api();
    } catch (error) {
      if (isLasting(error)) return this.#fail(state, error);
      this.#failures++;
      void this.#resubscribeAll();
      return;
    }
    const deliver = async (event: SessionEvent) => {
      if (state.closed || !(event.offset > state.lastOffset)) return; // repeat after a reconnect
      await state.onEvent(event);
      state.lastOffset = event.offset;
    };
    try {
      const subscription = api.subscribe(state.sessionId, state.lastOffset, deliver);
      state.subscription = subscription;
      await subscription.done();
      // The stream ended (session deleted).
      this.#follows.delete(state);
      state.closed = true;
      state.resolve();
    } catch (error) {
      if (state.closed) return;
      if (isLasting(error)) return this.#fail(state, error);
      if (typeof (error as { status?: unknown } | null)?.status === "number") {
        // The server refused for now (5xx, 429): try this one again later.
        this.#failures++;
        void this.#resubscribeAll();
        return;
      }
      // A lost connection: onRpcBroken re-subscribes every follow after reconnecting.
    }
  }

  #fail(state: FollowState, error: unknown): void {
    this.#follows.delete(state);
    state.closed = true;
    state.reject(error);
  }
}

/** A 4xx other than 408/429 will not get better by retrying. */
function isLasting(error: unknown): boolean {
  const status = (error as { status?: unknown } | null)?.status;
  return (
    typeof status === "number" && status >= 400 && status < 500 && status !== 408 && status !== 429
  );
}
