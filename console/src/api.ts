/**
 * The console's calls to its own worker. Session calls go through the shipped typed client
 * (src/client); the operator calls it does not cover — a stream's subscriptions, resume/skip
 * of parked ones and raw event pages — are here, with the same error type, so every failure
 * reaches the page as `SessionApiError` (status, code, message) and is shown as such.
 */
import { SessionApiError, SessionClient } from "@server/client";
import type { SubscriptionStatus } from "@server/streams/stream-rpc";
import type { Credential } from "./credential";

export type { SubscriptionStatus };

/** One event as the inspector shows it. */
export interface RawEvent {
  offset: number;
  type: string | null;
  payload: unknown;
  createdAt?: string;
  metadata?: unknown;
  idempotencyKey?: string;
}

export interface EventPage {
  events: RawEvent[];
  /** Pass back as `after` for the next page (the stream's wire offset). */
  next: string | null;
  upToDate: boolean;
}

export class ConsoleApi {
  readonly sessions: SessionClient;
  readonly #credential: Credential;

  constructor(credential: Credential) {
    this.#credential = credential;
    this.sessions = new SessionClient({
      baseUrl: location.origin,
      token: () => this.#credential.secret,
    });
  }

  get credential(): Credential {
    return this.#credential;
  }

  async #json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers = new Headers({ authorization: `Bearer ${this.#credential.secret}` });
    if (body !== undefined) headers.set("content-type", "application/json");
    let response: Response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? null : JSON.stringify(body),
        cache: "no-store",
      });
    } catch (error) {
      throw new SessionApiError(0, "network_error", `The server could not be reached (${error}).`);
    }
    if (!response.ok) throw await SessionApiError.fromResponse(response);
    return (await response.json()) as T;
  }

  subscriptions(stream: string): Promise<{ stream: string; subscriptions: SubscriptionStatus[] }> {
    return this.#json("GET", `/v1/subscriptions?${new URLSearchParams({ stream })}`);
  }

  resume(stream: string, key: string): Promise<{ subscription: SubscriptionStatus }> {
    return this.#json("POST", `/v1/subscriptions/resume?${new URLSearchParams({ stream, key })}`);
  }

  skip(
    stream: string,
    key: string,
    body: { offset?: number; reason?: string },
  ): Promise<{ skipped: unknown; subscription: SubscriptionStatus }> {
    return this.#json(
      "POST",
      `/v1/subscriptions/skip?${new URLSearchParams({ stream, key })}`,
      body,
    );
  }

  /**
   * A page of a session's events after `after` (`-1`: from the start), as stored (`full`, API
   * keys only) or as clients see them (`client`). Catch-up reads, not live: the inspector
   * asks again for newer events.
   */
  async sessionEvents(
    sessionId: string,
    after: string,
    view: "full" | "client",
  ): Promise<EventPage> {
    const query = new URLSearchParams({ offset: after, view });
    const headers = { authorization: `Bearer ${this.#credential.secret}` };
    let response: Response;
    try {
      response = await fetch(`/v1/sessions/${encodeURIComponent(sessionId)}/events?${query}`, {
        headers,
        cache: "no-store",
      });
    } catch (error) {
      throw new SessionApiError(0, "network_error", `The server could not be reached (${error}).`);
    }
    if (!response.ok) throw await SessionApiError.fromResponse(response);
    const events = (await response.json()) as RawEvent[];
    return {
      events,
      next: response.headers.get("stream-next-offset"),
      upToDate: response.headers.get("stream-up-to-date") === "true",
    };
  }
}

/** A plain sentence for any error a call threw. */
export function describeError(error: unknown): string {
  if (error instanceof SessionApiError) {
    const status = error.status === 0 ? "" : ` (HTTP ${error.status}, ${error.code})`;
    return `${error.message}${status}`;
  }
  if (error instanceof Error) return error.message;
  return String(error);
}
