/**
 * Where a session lives: its stream under the tenant's `/sessions/` prefix, and its
 * SessionAgent Durable Object named by tenant and session id. A module of its own so that
 * the HTTP edge can name sessions without loading the SessionAgent.
 */

/** Session streams live under this path prefix of their tenant. */
export const SESSION_STREAMS = "/sessions";
export const sessionPath = (sessionId: string) => `${SESSION_STREAMS}/${sessionId}`;
export const sessionObjectName = (tenant: string, sessionId: string) => `${tenant}:${sessionId}`;
