/**
 * The typed HTTP client of the session API, for browsers, Workers and Node alike: it needs
 * only `fetch`, imports nothing Node- or Workers-specific, and takes its types from the
 * server's routes (./types.ts). A web page gives it a scoped session token (minted by its own
 * server); a server gives it an API key. `token` may be a function, so that a page can hand
 * out a fresh token whenever one is needed (reconnects included).
 */
import { hc } from "hono/client";
import type { SessionRoutes } from "../http/sessions";
import { SessionApiError } from "./errors";
import { type EventsOptions, resumableEvents } from "./events";
import type {
  Cancelled,
  CreatedSession,
  CreateSessionInput,
  Decision,
  ListSessionsQuery,
  MintedToken,
  MintTokenInput,
  SendMessageInput,
  SentMessage,
  SessionDetail,
  SessionEvent,
  SessionList,
  SessionsHc,
} from "./types";

export interface SessionClientOptions {
  /** Where the worker is served, e.g. `https://agents.example.com` (no trailing `/v1`). */
  baseUrl: string;
  /** An API key (servers) or a scoped session token (browsers), or a function returning one. */
  token: string | (() => string | Promise<string>);
  /** The fetch to use (default: the global one). In workerd tests: `SELF.fetch`. */
  fetch?: (request: Request) => Promise<Response>;
}

/** A typed route's answer (`hc`): its `json()` is typed by the route's `c.json(...)`. */
type AnswerLike<T> = {
  ok: boolean;
  status: number;
  json(): Promise<T>;
  text(): Promise<string>;
};

/**
 * The JSON of a typed route's answer on success, a SessionApiError otherwise. Routes declare
 * only their successes (errors are thrown), so the body type is the route's own.
 */
async function ok<T>(response: AnswerLike<T>): Promise<T> {
  if (!response.ok) throw await SessionApiError.fromResponse(response);
  return response.json();
}

export class SessionClient {
  readonly #base: string;
  readonly #token: SessionClientOptions["token"];
  readonly #fetch: (request: Request) => Promise<Response>;
  readonly #api: SessionsHc;

  constructor(options: SessionClientOptions) {
    this.#base = options.baseUrl.replace(/\/+$/, "");
    this.#token = options.token;
    this.#fetch = options.fetch ?? ((request) => globalThis.fetch(request));
    this.#api = hc<SessionRoutes>(`${this.#base}/v1/sessions`, {
      fetch: ((input: RequestInfo | URL, init?: RequestInit) =>
        this.#fetch(new Request(input, init))) as typeof fetch,
      headers: async () => ({ authorization: `Bearer ${await this.#currentToken()}` }),
    });
  }

  /** `POST /v1/sessions` (API key). */
  async create(input: CreateSessionInput = {}): Promise<CreatedSession> {
    const body = await ok(await this.#api.index.$post({ json: input }));
    return body.session;
  }

  /** `GET /v1/sessions` (API key): newest first; pass `nextCursor` as `cursor` for the next page. */
  async list(query: ListSessionsQuery = {}): Promise<SessionList> {
    return ok(await this.#api.index.$get({ query }));
  }

  /** `GET /v1/sessions/:id`: the index row and the live state (pending approvals, messages). */
  async get(sessionId: string): Promise<SessionDetail> {
    const response = await this.#api[":id"].$get({ param: { id: sessionId } });
    return (await ok(response)).session;
  }

  /** `POST /v1/sessions/:id/messages`. A repeated `idempotencyKey` returns the first answer. */
  async send(
    sessionId: string,
    content: string,
    options: Omit<SendMessageInput, "content"> = {},
  ): Promise<SentMessage> {
    const response = await this.#api[":id"].messages.$post({
      param: { id: sessionId },
      json: { content, ...options },
    });
    return ok(response);
  }

  /** Approves or denies a tool call awaiting approval (404 unknown call, 409 not pending). */
  async decide(
    sessionId: string,
    toolCallId: string,
    approved: boolean,
    reason?: string,
  ): Promise<Decision> {
    const response = await this.#api[":id"]["tool-calls"][":toolCallId"].decision.$post({
      param: { id: sessionId, toolCallId },
      json: reason === undefined ? { approved } : { approved, reason },
    });
    return (await ok(response)).decision;
  }

  /** Cancels the running turn (and drops queued messages). */
  async cancel(sessionId: string, reason?: string): Promise<Cancelled> {
    const response = await this.#api[":id"].cancel.$post({
      param: { id: sessionId },
      json: reason === undefined ? {} : { reason },
    });
    return ok(response);
  }

  /** Deletes the session (API key): its stream is closed (readers see the end), its tokens end. */
  async delete(sessionId: string): Promise<void> {
    const response = await this.#api[":id"].$delete({ param: { id: sessionId } });
    if (!response.ok) throw await SessionApiError.fromResponse(response);
  }

  /** Mints a short-lived token for one session (API key); hand it to a browser. */
  async mintToken(sessionId: string, input: MintTokenInput): Promise<MintedToken> {
    const response = await this.#api[":id"].tokens.$post({ param: { id: sessionId }, json: input });
    return ok(response);
  }

  /** Ends every token minted so far for the session (API key). */
  async revokeTokens(sessionId: string): Promise<void> {
    const response = await this.#api[":id"].tokens.revoke.$post({ param: { id: sessionId } });
    if (!response.ok) throw await SessionApiError.fromResponse(response);
  }

  /**
   * The session's events after offset `after` (0: from the start), live, resuming after
   * disconnects with no gap and no repeat. Break out of the loop (or abort `signal`) to stop.
   * `view: "full"` (API keys only) includes the plumbing the client view leaves out.
   */
  events(
    sessionId: string,
    options: EventsOptions & { view?: "client" | "full" } = {},
  ): AsyncGenerator<SessionEvent, void> {
    const url = this.#api[":id"].events.$url({
      param: { id: sessionId },
      query: options.view ? { view: options.view } : {},
    });
    const open = async (after: number, signal: AbortSignal, token: string) => {
      const headers = new Headers({
        accept: "text/event-stream",
        authorization: `Bearer ${token}`,
      });
      if (after > 0) headers.set("last-event-id", String(after));
      return this.#fetch(new Request(url, { headers, signal }));
    };
    return resumableEvents(async (after, signal) => {
      const token = await this.#currentToken();
      const response = await open(after, signal, token);
      // A short-lived token expired while reading: with a token provider, ask it once more.
      if (response.status === 401 && typeof this.#token === "function") {
        const fresh = await this.#currentToken();
        if (fresh !== token) {
          await response.body?.cancel();
          return open(after, signal, fresh);
        }
      }
      return response;
    }, options);
  }

  async #currentToken(): Promise<string> {
    return typeof this.#token === "function" ? await this.#token() : this.#token;
  }
}

export function createSessionClient(options: SessionClientOptions): SessionClient {
  return new SessionClient(options);
}
