/**
 * The session API over capnweb (`/v1/rpc`). It is the HTTP API, not a second implementation:
 * each method goes through the typed client (src/client) with a fetch that calls this
 * worker's own Hono app in-process, so authentication, validation, errors and the events a
 * client may see are exactly those of the HTTP routes.
 *
 * The root object only authenticates (in-band, since browsers cannot set WebSocket headers):
 * `authenticate(credential)` returns the authenticated API, which pipelining lets a client use
 * before the answer arrives. Everything not meant for RPC is `#private` (capnweb exposes any
 * prototype member, TypeScript `private` included).
 */
import { type RpcStub, RpcTarget } from "capnweb";
import { z } from "zod";
import { authenticate } from "../auth/authenticate";
import {
  invalidToken,
  looksLikeToken,
  tokenSecret,
  verifySessionToken,
} from "../auth/session-tokens";
import { SessionClient } from "../client/client";
import { SessionApiError } from "../client/errors";
import type {
  CreateSessionInput,
  ListSessionsQuery,
  MintTokenInput,
  SendMessageInput,
  SessionEvent,
} from "../client/types";
import type { Env } from "../env";
import { DomainError } from "../errors/domain";
import { statusOf } from "../errors/http";
import { parseWith } from "../errors/parse";

/** What the RPC face needs from the worker: its app and how long idle connections live. */
export interface RpcDeps {
  env: Env;
  /** The worker's own app, called in-process. */
  fetch: (request: Request) => Promise<Response>;
  /** Present on WebSocket sessions: live subscriptions are bounded and end with the socket. */
  connection: RpcConnection | null;
}

/** Limits of one WebSocket connection (see ./serve.ts). */
export interface RpcConnection {
  readonly signal: AbortSignal;
  readonly maxSubscriptions: number;
  subscriptions: number;
}

const INTERNAL_ORIGIN = "http://rpc.internal";

const credentialSchema = z.string().min(1).max(4096);
const sessionIdSchema = z.string().min(1).max(200);
const offsetSchema = z.number().int().nonnegative();

/** An argument parsed as every door parses (src/errors/parse.ts), refused as a SessionApiError. */
function arg<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  try {
    return parseWith(schema, value, what);
  } catch (error) {
    throw asRpcError(error);
  }
}

/** Errors crossing capnweb keep their own properties: status, code and details travel. */
function asRpcError(error: unknown): unknown {
  if (error instanceof SessionApiError) return error;
  if (error instanceof DomainError) {
    return new SessionApiError(statusOf(error), error.code, error.message, error.details);
  }
  return error;
}

async function guarded<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw asRpcError(error);
  }
}

/** The unauthenticated root object of every capnweb session. */
export class RpcGateway extends RpcTarget {
  readonly #deps: RpcDeps;

  constructor(deps: RpcDeps) {
    super();
    this.#deps = deps;
  }

  /**
   * Checks an API key or a session token and returns the API acting with it. A bad, forged
   * or expired credential is a 401 here, before any other call. A session token then reaches
   * only its session's methods, with its scopes (403 otherwise), exactly as over HTTP.
   */
  authenticate(credential: string): Promise<SessionsRpc> {
    return guarded(async () => {
      const token = arg(credentialSchema, credential, "credential");
      if (looksLikeToken(token)) {
        // Signature and expiry here; session, scope and revocation on every call (the routes).
        let secret: string;
        try {
          secret = tokenSecret(this.#deps.env);
        } catch {
          throw invalidToken("session tokens are not enabled on this deployment");
        }
        await verifySessionToken(token, secret);
      } else {
        await authenticate(`Bearer ${token}`, this.#deps.env);
      }
      return new SessionsRpc(this.#deps, token);
    });
  }
}

/** The authenticated session API: the HTTP routes' operations as methods. */
export class SessionsRpc extends RpcTarget {
  readonly #client: SessionClient;
  readonly #connection: RpcConnection | null;

  constructor(deps: RpcDeps, credential: string) {
    super();
    this.#connection = deps.connection;
    this.#client = new SessionClient({
      baseUrl: INTERNAL_ORIGIN,
      token: credential,
      fetch: deps.fetch,
    });
  }

  /** Heartbeat: any call keeps a connection alive; this one costs nothing. */
  ping(): number {
    return Date.now();
  }

  createSession(input: CreateSessionInput = {}) {
    return guarded(() => this.#client.create(input));
  }

  listSessions(query: ListSessionsQuery = {}) {
    return guarded(() => this.#client.list(query));
  }

  getSession(sessionId: string) {
    return guarded(() => this.#client.get(arg(sessionIdSchema, sessionId, "session id")));
  }

  sendMessage(sessionId: string, content: string, options: Omit<SendMessageInput, "content"> = {}) {
    return guarded(() =>
      this.#client.send(arg(sessionIdSchema, sessionId, "session id"), content, options),
    );
  }

  decide(sessionId: string, toolCallId: string, approved: boolean, reason?: string) {
    return guarded(() =>
      this.#client.decide(
        arg(sessionIdSchema, sessionId, "session id"),
        toolCallId,
        approved,
        reason,
      ),
    );
  }

  cancel(sessionId: string, reason?: string) {
    return guarded(() =>
      this.#client.cancel(arg(sessionIdSchema, sessionId, "session id"), reason),
    );
  }

  deleteSession(sessionId: string) {
    return guarded(() => this.#client.delete(arg(sessionIdSchema, sessionId, "session id")));
  }

  mintToken(sessionId: string, input: MintTokenInput) {
    return guarded(() =>
      this.#client.mintToken(arg(sessionIdSchema, sessionId, "session id"), input),
    );
  }

  /**
   * Pushes the session's events after offset `after` to `onEvent`, one call at a time and in
   * order (each waits for the previous call to return, which is the flow control). Only on a
   * WebSocket session. After a reconnect, subscribe again after the last offset received:
   * nothing is skipped or repeated. The returned subscription's `done()` settles when it ends.
   */
  subscribe(
    sessionId: string,
    after: number,
    onEvent: RpcStub<(event: SessionEvent) => unknown>,
  ): EventSubscription {
    const id = arg(sessionIdSchema, sessionId, "session id");
    const from = arg(offsetSchema, after, "offset");
    if (typeof onEvent !== "function") {
      throw new SessionApiError(400, "validation_failed", "onEvent must be a function");
    }
    const connection = this.#connection;
    if (connection === null) {
      throw new SessionApiError(
        400,
        "bad_request",
        "live subscriptions need a WebSocket session (HTTP batches end with their response)",
      );
    }
    if (connection.subscriptions >= connection.maxSubscriptions) {
      throw new SessionApiError(
        429,
        "too_many_subscriptions",
        `at most ${connection.maxSubscriptions} live subscriptions per connection`,
      );
    }
    return new EventSubscription(this.#client, id, from, onEvent.dup(), connection);
  }
}

/** One live subscription: its loop runs until closed, the socket ends, or the stream ends. */
export class EventSubscription extends RpcTarget {
  readonly #stop = new AbortController();
  readonly #done: Promise<{ lastOffset: number; reason: "closed" | "ended" }>;
  #lastOffset = 0;

  constructor(
    client: SessionClient,
    sessionId: string,
    after: number,
    onEvent: RpcStub<(event: SessionEvent) => unknown>,
    connection: RpcConnection,
  ) {
    super();
    this.#lastOffset = after;
    connection.subscriptions++;
    const stopAll = () => this.#stop.abort();
    connection.signal.addEventListener("abort", stopAll, { once: true });
    this.#done = (async () => {
      try {
        for await (const event of client.events(sessionId, { after, signal: this.#stop.signal })) {
          await onEvent(event);
          this.#lastOffset = event.offset;
        }
        return {
          lastOffset: this.#lastOffset,
          reason: this.#stop.signal.aborted ? ("closed" as const) : ("ended" as const),
        };
      } catch (error) {
        throw asRpcError(error);
      } finally {
        connection.subscriptions--;
        connection.signal.removeEventListener("abort", stopAll);
        this.#stop.abort();
        onEvent[Symbol.dispose]();
      }
    })();
    this.#done.catch(() => {}); // observed through done(); never an unhandled rejection
  }

  /**
   * Settles when the subscription ends: `ended` when the session's stream closed (deleted),
   * `closed` after close(); rejects with the error that stopped it (e.g. 404, 401).
   */
  done() {
    return this.#done;
  }

  /** The offset of the last event the callback accepted. */
  lastOffset(): number {
    return this.#lastOffset;
  }

  close(): void {
    this.#stop.abort();
  }

  [Symbol.dispose](): void {
    this.#stop.abort();
  }
}
