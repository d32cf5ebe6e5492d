/**
 * The typed HTTP client of the session API, for browsers, Workers and Node alike: it needs
 * only `fetch`, imports nothing Node- or Workers-specific, and takes its types from the
 * server's routes (./types.ts). A web page gives it a scoped session token (minted by its own
 * server); a server gives it an API key. `token` may be a function, so that a page can hand
 * out a fresh token whenever one is needed (reconnects included).
 */
import { SessionApiError } from "./errors";
import { type EventsOptions, resumableEvents } from "./events";
import type {
  Cancelled,
  CreatedSession,
  CreateSessionInput,
  Decision,
  ListSessionsQuery,
  SendMessageInput,
  SentMessage,
  SessionDetail,
  SessionEvent,
  SessionList,
} from "./types";

export interface SessionClientOptions {
  /** Where the worker is served, e.g. `https://agents.example.com` (no trailing `/v1`). */
  baseUrl: string;
  /** An API key (servers) or a scoped session token (browsers), or a function returning one. */
  token: string | (() => string | Promise<string>);
  /** The fetch to use (default: the global one). In workerd tests: `SELF.fetch`. */
  fetch?: (request: Request) => Promise<Response>;
}

export type TokenScope = "read" | "write" | "approve";

export interface MintTokenInput {
  scopes: TokenScope[];
  ttlSeconds?: number;
}

export interface MintedToken {
  token: string;
  expiresAt: string;
  scopes: TokenScope[];
  sessionId: string;
}

export class SessionClient {
  readonly #base: string;
  readonly #token: SessionClientOptions["token"];
  readonly #fetch: (request: Request) => Promise<Response>;

  constructor(options: SessionClientOptions) {
    this.#base = options.baseUrl.replace(/\/+$/, "");
    this.#token = options.token;
    this.#fetch = options.fetch ?? ((request) => globalThis.fetch(request));
  }

  /** `POST /v1/sessions`. */
  async create(input: CreateSessionInput = {}): Promise<CreatedSession> {
    const body = await this.#json<{ session: CreatedSession }>("POST", "/v1/sessions", input);
    return body.session;
  }

  /** `GET /v1/sessions`: newest first; pass `nextCursor` as `cursor` for the next page. */
  list(query: ListSessionsQuery = {}): Promise<SessionList> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== null) params.set(key, String(value));
    }
    const search = params.size > 0 ? `?${params}` : "";
    return this.#json<SessionList>("GET", `/v1/sessions${search}`);
  }

  /** `GET /v1/sessions/:id`: the index row and the live state (pending approvals, messages). */
  async get(sessionId: string): Promise<SessionDetail> {
    const body = await this.#json<{ session: SessionDetail }>("GET", sessionUrl(sessionId));
    return body.session;
  }

  /** `POST /v1/sessions/:id/messages`. A repeated `idempotencyKey` returns the first answer. */
  send(
    sessionId: string,
    content: string,
    options: Omit<SendMessageInput, "content"> = {},
  ): Promise<SentMessage> {
    return this.#json<SentMessage>("POST", `${sessionUrl(sessionId)}/messages`, {
      content,
      ...options,
    });
  }

  /** Approves or denies a tool call awaiting approval (404 unknown call, 409 not pending). */
  async decide(
    sessionId: string,
    toolCallId: string,
    approved: boolean,
    reason?: string,
  ): Promise<Decision> {
    const body = await this.#json<{ decision: Decision }>(
      "POST",
      `${sessionUrl(sessionId)}/tool-calls/${encodeURIComponent(toolCallId)}/decision`,
      reason === undefined ? { approved } : { approved, reason },
    );
    return body.decision;
  }

  /** Cancels the running turn (and drops queued messages). */
  cancel(sessionId: string, reason?: string): Promise<Cancelled> {
    return this.#json<Cancelled>(
      "POST",
      `${sessionUrl(sessionId)}/cancel`,
      reason === undefined ? {} : { reason },
    );
  }

  /** Deletes the session: its stream is closed (readers see the end) and it leaves the list. */
  async delete(sessionId: string): Promise<void> {
    await this.#json<null>("DELETE", sessionUrl(sessionId));
  }

  /** Mints a short-lived token for one session (needs an API key; give it to a browser). */
  mintToken(sessionId: string, input: MintTokenInput): Promise<MintedToken> {
    return this.#json<MintedToken>("POST", `${sessionUrl(sessionId)}/tokens`, input);
  }

  /**
   * The session's events after offset `after` (0: from the start), live, resuming after
   * disconnects with no gap and no repeat. Break out of the loop (or abort `signal`) to stop.
   */
  events(sessionId: string, options: EventsOptions = {}): AsyncGenerator<SessionEvent, void> {
    return resumableEvents(async (after, signal) => {
      const headers = new Headers({
        accept: "text/event-stream",
        authorization: `Bearer ${await this.#currentToken()}`,
      });
      if (after > 0) headers.set("last-event-id", String(after));
      return this.#fetch(
        new Request(`${this.#base}${sessionUrl(sessionId)}/events`, { headers, signal }),
      );
    }, options);
  }

  async #currentToken(): Promise<string> {
    return typeof this.#token === "function" ? await this.#token() : this.#token;
  }

  async #json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers = new Headers({ authorization: `Bearer ${await this.#currentToken()}` });
    if (body !== undefined) headers.set("content-type", "application/json");
    const response = await this.#fetch(
      new Request(`${this.#base}${path}`, {
        method,
        headers,
        body: body === undefined ? null : JSON.stringify(body),
      }),
    );
    if (!response.ok) throw await SessionApiError.fromResponse(response);
    if (response.status === 204) return null as T;
    return (await response.json()) as T;
  }
}

const sessionUrl = (sessionId: string) => `/v1/sessions/${encodeURIComponent(sessionId)}`;

export function createSessionClient(options: SessionClientOptions): SessionClient {
  return new SessionClient(options);
}
