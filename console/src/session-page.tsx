/**
 * One session: its live conversation (streaming text, tool calls with arguments and
 * results, approvals, cancel, send), the health of its stream's subscriptions, and a raw
 * event inspector, as three tabs over one live view (switching tabs keeps the stream open).
 */

import type {
  AssistantMessage,
  NotLoaded,
  PendingApproval,
  ToolMessage,
  UserMessage,
  ViewMessage,
} from "@server/client";
import { useEffect, useRef, useState } from "preact/hooks";
import { type ConsoleApi, describeError } from "./api";
import type { ConsoleView } from "./console-view";
import { can } from "./credential";
import { EventInspector } from "./event-inspector";
import { label, prettyArgs, prettyJson } from "./format";
import { href, type SessionTab } from "./router";
import { StreamHealth } from "./stream-health";
import { type Connection, useSessionView } from "./use-session-view";

export function SessionPage({ api, id, tab }: { api: ConsoleApi; id: string; tab: SessionTab }) {
  const { view, connection, resumedFrom } = useSessionView(api, id);
  const operator = can(api.credential, "operate");

  return (
    <div class="stack session-page">
      <header class="session-header">
        <div>
          {operator && (
            <a class="back" href="#/">
              ← Sessions
            </a>
          )}
          <h1>{view.title || "Untitled session"}</h1>
          <p class="mono muted small">
            {id}
            {view.model && ` · ${view.model}`}
          </p>
        </div>
        <div class="session-status">
          <span class={`badge status-${view.status}`} data-testid="session-status">
            {label(view.status)}
            {view.cancelling ? " · cancelling" : ""}
          </span>
          <ConnectionNote connection={connection} resumedFrom={resumedFrom} view={view} />
        </div>
      </header>

      <nav class="tabs" aria-label="Session">
        <TabLink id={id} tab="conversation" current={tab} text="Conversation" />
        <TabLink id={id} tab="health" current={tab} text="Stream health" />
        <TabLink id={id} tab="events" current={tab} text="Events" />
      </nav>

      {tab === "conversation" && <Conversation api={api} id={id} view={view} />}
      {tab === "health" &&
        (operator ? (
          <StreamHealth api={api} stream={`/sessions/${id}`} />
        ) : (
          <p class="panel muted">Stream health needs an API key (a session token cannot see it).</p>
        ))}
      {tab === "events" && <EventInspector api={api} sessionId={id} />}
    </div>
  );
}

function TabLink(props: { id: string; tab: SessionTab; current: SessionTab; text: string }) {
  return (
    <a
      href={href({ name: "session", id: props.id, tab: props.tab })}
      aria-current={props.tab === props.current ? "page" : undefined}
    >
      {props.text}
    </a>
  );
}

function ConnectionNote(props: { connection: Connection; resumedFrom: number; view: ConsoleView }) {
  const { connection } = props;
  let text: string;
  let kind = "ok";
  switch (connection.state) {
    case "connecting":
      text = props.resumedFrom > 0 ? `Resuming after event ${props.resumedFrom}…` : "Connecting…";
      kind = "wait";
      break;
    case "live":
      text = `Live · event ${props.view.lastOffset}`;
      break;
    case "reconnecting":
      text = `Connection lost, reconnecting (attempt ${connection.attempt}) after event ${props.view.lastOffset}`;
      kind = "wait";
      break;
    case "ended":
      text = "The session's stream has ended (deleted).";
      kind = "wait";
      break;
    case "failed":
      text = `Live updates stopped: ${describeError(connection.error)}`;
      kind = "bad";
      break;
  }
  return (
    <p
      class={`connection ${kind}`}
      role={kind === "bad" ? "alert" : "status"}
      data-testid="connection"
    >
      {text}
    </p>
  );
}

function Conversation({ api, id, view }: { api: ConsoleApi; id: string; view: ConsoleView }) {
  const [actionError, setActionError] = useState<string | null>(null);
  const canWrite = can(api.credential, "write");
  const canApprove = can(api.credential, "approve");
  const turnActive = view.turnId !== null || view.status === "awaiting_approval";

  const act = async (what: string, call: () => Promise<unknown>): Promise<boolean> => {
    setActionError(null);
    try {
      await call();
      return true;
    } catch (e) {
      setActionError(`${what} failed: ${describeError(e)}`);
      return false;
    }
  };

  return (
    <div class="conversation">
      {view.lastError && (
        <p class="error panel full" role="alert" data-testid="session-error">
          The session failed: {view.lastError}
        </p>
      )}
      {actionError && (
        <p class="error panel full" role="alert" data-testid="action-error">
          {actionError}
          <button type="button" class="link" onClick={() => setActionError(null)}>
            Dismiss
          </button>
        </p>
      )}

      <Transcript view={view} />

      <aside class="side" aria-label="Actions">
        {view.pendingApprovals.length > 0 && (
          <section class="panel attention approvals" aria-labelledby="approvals-title">
            <h2 id="approvals-title">Waiting for your decision</h2>
            {view.pendingApprovals.map((approval) => (
              <ApprovalCard
                key={approval.toolCallId}
                approval={approval}
                disabled={!canApprove}
                onDecide={(approved, reason) =>
                  act(approved ? "Approving" : "Denying", () =>
                    api.sessions.decide(id, approval.toolCallId, approved, reason || undefined),
                  )
                }
              />
            ))}
            {!canApprove && <p class="muted">This token has no approve scope.</p>}
          </section>
        )}

        <Composer
          disabled={!canWrite || view.status === "deleted"}
          canCancel={canWrite && turnActive && !view.cancelling}
          onSend={(content, key) =>
            act("Sending", () => api.sessions.send(id, content, { idempotencyKey: key }))
          }
          onCancel={() => act("Cancelling", () => api.sessions.cancel(id))}
          hint={canWrite ? null : "This token has no write scope: it can read only."}
          running={turnActive}
        />
      </aside>
    </div>
  );
}

function ApprovalCard(props: {
  approval: PendingApproval;
  disabled: boolean;
  onDecide: (approved: boolean, reason: string) => Promise<boolean>;
}) {
  const { approval } = props;
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const reasonId = `reason-${approval.toolCallId}`;
  const decide = async (approved: boolean) => {
    setBusy(true);
    await props.onDecide(approved, reason.trim());
    setBusy(false);
  };
  return (
    <article
      class="approval"
      data-tool-call-id={approval.toolCallId}
      aria-label={`Approval for ${approval.toolName}`}
    >
      <h3>
        <span class="mono">{approval.toolName}</span> wants to run with
      </h3>
      <pre class="code">{prettyJson(approval.args)}</pre>
      <label for={reasonId}>Reason (optional, recorded with the decision)</label>
      <input
        id={reasonId}
        value={reason}
        maxLength={2000}
        onInput={(e) => setReason((e.target as HTMLInputElement).value)}
      />
      <div class="buttons">
        <button type="button" disabled={props.disabled || busy} onClick={() => decide(true)}>
          Approve
        </button>
        <button
          type="button"
          class="danger"
          disabled={props.disabled || busy}
          onClick={() => decide(false)}
        >
          Deny
        </button>
      </div>
    </article>
  );
}

function Transcript({ view }: { view: ConsoleView }) {
  const ref = useRef<HTMLOListElement>(null);
  const stick = useRef(true);
  // Follow the newest text while the reader is at the bottom; leave them be when scrolled up.
  useEffect(() => {
    const el = ref.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  });
  const onScroll = () => {
    const el = ref.current;
    if (el) stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
  };
  return (
    <section class="panel transcript-panel" aria-labelledby="transcript-title">
      <h2 id="transcript-title" class="visually-hidden">
        Transcript
      </h2>
      {view.messages.length === 0 ? (
        <p class="muted">No messages yet. Send one below.</p>
      ) : (
        <ol
          class="transcript"
          ref={ref}
          onScroll={onScroll}
          aria-live="off"
          aria-label="Transcript"
          // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling region must take focus to scroll by keyboard
          tabIndex={0}
        >
          {view.messages.map((message) => (
            <MessageItem
              key={`${message.kind}:${message.id}`}
              message={message}
              denied={message.kind === "tool" && view.denied.includes(message.id)}
            />
          ))}
        </ol>
      )}
    </section>
  );
}

function MessageItem({ message, denied }: { message: ViewMessage; denied: boolean }) {
  switch (message.kind) {
    case "user":
      return <UserItem message={message} />;
    case "assistant":
      return <AssistantItem message={message} />;
    case "tool":
      return <ToolItem message={message} denied={denied} />;
  }
}

function UserItem({ message }: { message: UserMessage }) {
  return (
    <li class="msg user" data-kind="user" data-status={message.status}>
      <div class="who">
        You{message.status !== "sent" && <span class="tag">{message.status}</span>}
      </div>
      <div class="text">{message.text}</div>
      <NotLoadedNote note={message.notLoaded} />
    </li>
  );
}

/** Content stored in chunks that this view could not put together says so, with its size. */
function NotLoadedNote({ note }: { note: NotLoaded | null }) {
  if (note === null) return null;
  const size = note.bytes === null ? "" : ` (${note.bytes.toLocaleString()} bytes)`;
  const why =
    note.reason === "too_large"
      ? "too large to show here"
      : note.reason === "invalid"
        ? "its stored chunks do not match their reference"
        : "its chunks were written before this view started reading";
  return (
    <p class="small" data-not-loaded={note.reason}>
      Content not shown{size}: {why}. The full stream (Events tab) holds it.
    </p>
  );
}

function AssistantItem({ message }: { message: AssistantMessage }) {
  return (
    <li
      class={`msg assistant ${message.status}`}
      data-kind="assistant"
      data-status={message.status}
      aria-busy={message.status === "streaming"}
    >
      <div class="who">
        Assistant
        {message.status !== "completed" && <span class="tag">{message.status}</span>}
        {message.attempt > 1 && <span class="tag">attempt {message.attempt}</span>}
      </div>
      <div class="text">
        {message.text}
        {message.status === "streaming" && <span class="caret" aria-hidden="true" />}
      </div>
      <NotLoadedNote note={message.notLoaded} />
      {message.error && <p class="error">{message.error}</p>}
    </li>
  );
}

function ToolItem({ message, denied }: { message: ToolMessage; denied: boolean }) {
  // A denied call ends with an error result the model sees; it stays "denied" here.
  const status = denied && message.status !== "cancelled" ? "denied" : message.status;
  return (
    <li
      class={`msg tool ${status}`}
      data-kind="tool"
      data-status={status}
      data-tool-call-id={message.id}
    >
      <div class="who">
        Tool <span class="mono">{message.toolName}</span>
        <span class={`tag tool-${status}`}>{label(status)}</span>
      </div>
      <details open>
        <summary>Arguments</summary>
        <pre class="code">{prettyArgs(message.input)}</pre>
      </details>
      {message.reason && <p class="small">Reason: {message.reason}</p>}
      <NotLoadedNote note={message.resultNotLoaded} />
      {message.result !== null && (
        <details open>
          <summary>
            {status === "failed"
              ? "Error"
              : status === "denied"
                ? "What the model was told"
                : "Result"}
          </summary>
          <pre class="code">{prettyJson(message.result)}</pre>
        </details>
      )}
    </li>
  );
}

function Composer(props: {
  disabled: boolean;
  canCancel: boolean;
  running: boolean;
  hint: string | null;
  onSend: (content: string, idempotencyKey: string) => Promise<boolean>;
  onCancel: () => Promise<boolean>;
}) {
  const [text, setText] = useState("");
  // One key per draft: a send retried after an error is not a second message.
  const [key, setKey] = useState(() => crypto.randomUUID());
  const [busy, setBusy] = useState(false);
  const send = async (event?: Event) => {
    event?.preventDefault();
    const content = text.trim();
    if (content === "" || busy) return;
    setBusy(true);
    if (await props.onSend(content, key)) {
      setText("");
      setKey(crypto.randomUUID());
    }
    setBusy(false);
  };
  return (
    <form class="panel composer" onSubmit={send}>
      <label for="message">Message</label>
      <textarea
        id="message"
        rows={3}
        value={text}
        disabled={props.disabled}
        aria-describedby="composer-hint"
        onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) void send();
        }}
      />
      <p id="composer-hint" class="hint">
        {props.hint ??
          `Ctrl+Enter sends.${props.running ? " A message sent while a turn runs is queued." : ""}`}
      </p>
      <div class="buttons">
        <button type="submit" disabled={props.disabled || busy || text.trim() === ""}>
          {busy ? "Sending…" : "Send"}
        </button>
        <button
          type="button"
          class="danger secondary"
          disabled={!props.canCancel}
          onClick={() => void props.onCancel()}
        >
          Cancel turn
        </button>
      </div>
    </form>
  );
}
