/**
 * The error every client call throws for an answer it cannot use: the server's JSON error
 * `{ error: { code, message, details? } }` with the HTTP status, so a UI can branch on
 * `status`/`code` (401 expired token, 404 unknown session, 409 already decided, …).
 */
export class SessionApiError extends Error {
  override readonly name = "SessionApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }

  /** Builds the error from a non-2xx response (consumes its body). */
  static async fromResponse(response: {
    status: number;
    text(): Promise<string>;
  }): Promise<SessionApiError> {
    const text = await response.text().catch(() => "");
    try {
      const body = JSON.parse(text) as {
        error?: { code?: unknown; message?: unknown; details?: unknown };
      };
      const e = body.error;
      if (e && typeof e.code === "string" && typeof e.message === "string") {
        return new SessionApiError(response.status, e.code, e.message, e.details);
      }
    } catch {
      // not JSON: fall through
    }
    return new SessionApiError(
      response.status,
      "http_error",
      `HTTP ${response.status}${text ? `: ${text.slice(0, 200)}` : ""}`,
    );
  }
}
