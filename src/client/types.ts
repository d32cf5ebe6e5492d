/**
 * The client's types, all taken from the server's routes: `SessionRoutes` is the type of the
 * session routes (validator middleware, typed `c.json` answers), read through Hono's `hc`
 * inference. Events are the client view's (src/sessions/client-view.ts). Type-only imports:
 * nothing of the server is bundled.
 */
import type { hc, InferRequestType, InferResponseType } from "hono/client";
import type { SessionRoutes } from "../http/sessions";
import type { ClientEvent } from "../sessions/client-view";
import type { SessionStatus } from "../sessions/events";

/** The typed `hc` client of the session routes (mounted at `/v1/sessions`). */
export type SessionsHc = ReturnType<typeof hc<SessionRoutes>>;
type Item = SessionsHc[":id"];

/** One event of a session as a client receives it; `offset` numbers it in the session. */
export type SessionEvent = ClientEvent;
export type { JsonValue } from "../streams/messages";
export type { SessionStatus };

export type CreateSessionInput = InferRequestType<SessionsHc["index"]["$post"]>["json"];
export type ListSessionsQuery = InferRequestType<SessionsHc["index"]["$get"]>["query"];
export type SendMessageInput = InferRequestType<Item["messages"]["$post"]>["json"];
export type MintTokenInput = InferRequestType<Item["tokens"]["$post"]>["json"];
export type TokenScope = MintTokenInput["scopes"][number];

/** `POST /v1/sessions` → 201 `{ session }`. */
export type CreatedSession = InferResponseType<SessionsHc["index"]["$post"], 201>["session"];
/** `GET /v1/sessions`. */
export type SessionList = InferResponseType<SessionsHc["index"]["$get"], 200>;
/** `GET /v1/sessions/:id`: the index row plus the live state. */
export type SessionDetail = InferResponseType<Item["$get"], 200>["session"];
/** `POST /v1/sessions/:id/messages` → 202. */
export type SentMessage = InferResponseType<Item["messages"]["$post"], 202>;
/** `POST /v1/sessions/:id/tool-calls/:toolCallId/decision` → 200 `{ decision }`. */
export type Decision = InferResponseType<
  Item["tool-calls"][":toolCallId"]["decision"]["$post"],
  200
>["decision"];
/** `POST /v1/sessions/:id/cancel` → 202. */
export type Cancelled = InferResponseType<Item["cancel"]["$post"], 202>;
/** `POST /v1/sessions/:id/tokens` → 201. */
export type MintedToken = InferResponseType<Item["tokens"]["$post"], 201>;
