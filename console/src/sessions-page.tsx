/**
 * The sessions list (API keys): sessions waiting for a human decision pinned on top, then
 * every session (or one status), newest first, a page at a time. It is read from the D1
 * index and kept live by polling every few seconds while the tab is visible: the index is a
 * table, not a stream, and a poll of one page costs one indexed query.
 */

import type { SessionIndexRow } from "@server/db/sessions-index";
import { useState } from "preact/hooks";
import { type ConsoleApi, describeError } from "./api";
import { formatTime, label } from "./format";
import { href, navigate } from "./router";
import { usePoll } from "./use-poll";

const POLL_MS = 3_000;
const FILTERS = [
  ["awaiting_approval", "Awaiting approval"],
  ["all", "All sessions"],
  ["running", "Running"],
  ["idle", "Idle"],
  ["failed", "Failed"],
  ["cancelled", "Cancelled"],
] as const;
type Filter = (typeof FILTERS)[number][0];

export function SessionsPage({ api }: { api: ConsoleApi }) {
  const [filter, setFilter] = useState<Filter>("all");
  const [limit, setLimit] = useState(20);
  // Cursors of the pages before the current one (the first page has none).
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const cursor = cursors[cursors.length - 1] ?? null;

  const waiting = usePoll(
    () => api.sessions.list({ status: "awaiting_approval", limit: 10 }),
    [api],
    POLL_MS,
  );
  const page = usePoll(
    () =>
      api.sessions.list({
        ...(filter === "all" ? {} : { status: filter }),
        limit,
        ...(cursor ? { cursor } : {}),
      }),
    [api, filter, limit, cursor],
    POLL_MS,
  );

  const changeFilter = (value: Filter) => {
    setFilter(value);
    setCursors([null]);
  };

  return (
    <div class="stack">
      <div class="page-title">
        <h1>Sessions</h1>
        <NewSession api={api} />
      </div>

      {filter === "all" && (
        <section class="panel attention" aria-labelledby="waiting-title">
          <h2 id="waiting-title">
            Awaiting approval{" "}
            <span class="count">{waiting.data ? waiting.data.sessions.length : "…"}</span>
          </h2>
          {waiting.error ? (
            <p class="error" role="alert">
              Could not load: {describeError(waiting.error)}
            </p>
          ) : waiting.data && waiting.data.sessions.length === 0 ? (
            <p class="muted">No session is waiting for a decision.</p>
          ) : (
            waiting.data && (
              <SessionTable
                rows={waiting.data.sessions}
                caption="Sessions awaiting approval"
                id="waiting"
              />
            )
          )}
          {waiting.data?.nextCursor && (
            <button type="button" class="link" onClick={() => changeFilter("awaiting_approval")}>
              Show all sessions awaiting approval
            </button>
          )}
        </section>
      )}

      <section class="panel" aria-labelledby="list-title">
        <div class="toolbar">
          <h2 id="list-title">{FILTERS.find(([v]) => v === filter)![1]}</h2>
          <div class="field inline">
            <label for="status-filter">Status</label>
            <select
              id="status-filter"
              value={filter}
              onChange={(e) => changeFilter((e.target as HTMLSelectElement).value as Filter)}
            >
              {FILTERS.map(([value, text]) => (
                <option value={value} key={value}>
                  {text}
                </option>
              ))}
            </select>
          </div>
          <div class="field inline">
            <label for="page-size">Per page</label>
            <select
              id="page-size"
              value={String(limit)}
              onChange={(e) => {
                setLimit(Number((e.target as HTMLSelectElement).value));
                setCursors([null]);
              }}
            >
              {[10, 20, 50, 100].map((n) => (
                <option value={String(n)} key={n}>
                  {n}
                </option>
              ))}
            </select>
          </div>
          <LiveNote updatedAt={page.updatedAt} />
        </div>
        {page.error !== null && (
          <p class="error" role="alert">
            Could not load the sessions: {describeError(page.error)}
          </p>
        )}
        {page.data === null ? (
          page.loading && <p class="muted">Loading…</p>
        ) : page.data.sessions.length === 0 ? (
          <p class="muted">No sessions{filter === "all" ? " yet" : " with this status"}.</p>
        ) : (
          <SessionTable rows={page.data.sessions} caption="Sessions" id="sessions" />
        )}
        <nav class="pager" aria-label="Pages">
          <button
            type="button"
            class="secondary"
            disabled={cursors.length <= 1}
            onClick={() => setCursors((c) => c.slice(0, -1))}
          >
            ← Newer
          </button>
          <span>Page {cursors.length}</span>
          <button
            type="button"
            class="secondary"
            disabled={!page.data?.nextCursor}
            onClick={() => {
              const next = page.data?.nextCursor;
              if (next) setCursors((c) => [...c, next]);
            }}
          >
            Older →
          </button>
        </nav>
      </section>
    </div>
  );
}

function LiveNote({ updatedAt }: { updatedAt: number | null }) {
  return (
    <span class="live-note" title="The list refreshes every few seconds while this tab is visible">
      <span class="dot" aria-hidden="true" />
      {updatedAt ? `Live · updated ${new Date(updatedAt).toLocaleTimeString()}` : "Live"}
    </span>
  );
}

/** Arrow keys move between rows; Enter follows the focused row's link. */
function onRowKey(event: KeyboardEvent) {
  if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
  const links = [
    ...(event.currentTarget as HTMLElement).querySelectorAll<HTMLAnchorElement>("a.row-link"),
  ];
  const i = links.indexOf(document.activeElement as HTMLAnchorElement);
  if (i < 0) return;
  const next = links[i + (event.key === "ArrowDown" ? 1 : -1)];
  if (next) {
    event.preventDefault();
    next.focus();
  }
}

function SessionTable({
  rows,
  caption,
  id,
}: {
  rows: SessionIndexRow[];
  caption: string;
  id: string;
}) {
  return (
    <div class="table-wrap">
      <table class="sessions" id={id} onKeyDown={onRowKey}>
        <caption class="visually-hidden">{caption} (arrow keys move between rows)</caption>
        <thead>
          <tr>
            <th scope="col">Session</th>
            <th scope="col">Status</th>
            <th scope="col" class="num">
              Approvals
            </th>
            <th scope="col" class="wide-only">
              Model
            </th>
            <th scope="col">Updated</th>
            <th scope="col" class="wide-only">
              Last error
            </th>
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={row.id} data-session-id={row.id} data-status={row.status}>
              <td>
                <a
                  class="row-link"
                  href={href({ name: "session", id: row.id, tab: "conversation" })}
                >
                  {row.title || "Untitled session"}
                </a>
                <div class="mono muted small">{row.id}</div>
              </td>
              <td>
                <span class={`badge status-${row.status}`}>{label(row.status)}</span>
              </td>
              <td class="num">{row.pendingApprovalCount}</td>
              <td class="wide-only mono small">{row.model}</td>
              <td class="small">{formatTime(row.updatedAt)}</td>
              <td class="wide-only small error-text">{row.lastError ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function NewSession({ api }: { api: ConsoleApi }) {
  const [title, setTitle] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const session = await api.sessions.create(title.trim() ? { title: title.trim() } : {});
      navigate({ name: "session", id: session.id, tab: "conversation" });
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="new-session" onSubmit={submit}>
      <label for="new-title">New session title</label>
      <input
        id="new-title"
        value={title}
        maxLength={200}
        placeholder="optional"
        onInput={(e) => setTitle((e.target as HTMLInputElement).value)}
      />
      <button type="submit" disabled={busy}>
        {busy ? "Creating…" : "New session"}
      </button>
      {error && (
        <p class="error" role="alert">
          Could not create the session: {error}
        </p>
      )}
    </form>
  );
}
