/**
 * The raw event inspector: a session's events as stored (offset, type, time, payload,
 * metadata, idempotency key) — the full stream for API keys, the client view for tokens —
 * read page by page from a chosen offset, and optionally followed (asks again every two
 * seconds once it has caught up). It holds at most MAX_ROWS events; older ones are dropped
 * from the page as newer arrive (jump back with "Start after offset").
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { type ConsoleApi, describeError, type RawEvent } from "./api";
import { can } from "./credential";
import { formatClock, prettyJson } from "./format";

const MAX_ROWS = 500;
const FOLLOW_MS = 2_000;

export function EventInspector({ api, sessionId }: { api: ConsoleApi; sessionId: string }) {
  const full = can(api.credential, "operate");
  const [view, setView] = useState<"full" | "client">(full ? "full" : "client");
  const [start, setStart] = useState("0");
  const [from, setFrom] = useState(0);
  const [events, setEvents] = useState<RawEvent[]>([]);
  const [dropped, setDropped] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const [upToDate, setUpToDate] = useState(false);
  const [follow, setFollow] = useState(true);
  const [filter, setFilter] = useState("");
  const next = useRef<string>("-1");
  const busy = useRef(false);

  const load = async () => {
    if (busy.current) return;
    busy.current = true;
    try {
      const page = await api.sessionEvents(sessionId, next.current, view);
      if (page.next) next.current = page.next;
      setUpToDate(page.upToDate);
      setError(null);
      if (page.events.length > 0) {
        setEvents((old) => {
          const all = [...old, ...page.events];
          const over = all.length - MAX_ROWS;
          if (over > 0) setDropped((d) => d + over);
          return over > 0 ? all.slice(over) : all;
        });
      }
    } catch (e) {
      setError(describeError(e));
    } finally {
      busy.current = false;
    }
  };

  // A new view or start offset: read again from there.
  useEffect(() => {
    next.current = from > 0 ? String(from) : "-1";
    setEvents([]);
    setDropped(0);
    setUpToDate(false);
    void load();
  }, [view, from, sessionId]);

  // Follow: keep reading while not caught up, then every FOLLOW_MS.
  useEffect(() => {
    if (!follow) return;
    const timer = setInterval(
      () => {
        if (document.visibilityState === "visible") void load();
      },
      upToDate ? FOLLOW_MS : 250,
    );
    return () => clearInterval(timer);
  }, [follow, upToDate, view, from]);

  const needle = filter.trim().toLowerCase();
  const shown = needle
    ? events.filter((e) => (e.type ?? "").toLowerCase().includes(needle))
    : events;

  return (
    <section class="panel" aria-labelledby="events-title">
      <h2 id="events-title">Events</h2>
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          const n = Number(start);
          setFrom(Number.isInteger(n) && n > 0 ? n : 0);
        }}
      >
        <div class="field inline">
          <label for="event-view">View</label>
          <select
            id="event-view"
            value={view}
            onChange={(e) => setView((e.target as HTMLSelectElement).value as "full" | "client")}
          >
            {full && <option value="full">Full stream (operators)</option>}
            <option value="client">Client view</option>
          </select>
        </div>
        <div class="field inline">
          <label for="event-filter">Type contains</label>
          <input
            id="event-filter"
            value={filter}
            placeholder="tool/"
            onInput={(e) => setFilter((e.target as HTMLInputElement).value)}
          />
        </div>
        <div class="field inline">
          <label for="event-start">Start after offset</label>
          <input
            id="event-start"
            inputMode="numeric"
            size={6}
            value={start}
            onInput={(e) => setStart((e.target as HTMLInputElement).value)}
          />
          <button type="submit" class="secondary">
            Go
          </button>
        </div>
        <div class="field inline">
          <input
            id="event-follow"
            type="checkbox"
            checked={follow}
            onChange={(e) => setFollow((e.target as HTMLInputElement).checked)}
          />
          <label for="event-follow">Follow new events</label>
        </div>
        {!follow && (
          <button type="button" class="secondary" onClick={() => void load()}>
            Load newer
          </button>
        )}
      </form>
      {error && (
        <p class="error" role="alert">
          Could not read events: {error}
        </p>
      )}
      <p class="summary small">
        {events.length} event{events.length === 1 ? "" : "s"} loaded
        {dropped > 0 && ` (${dropped} older ones dropped from this page)`}
        {upToDate ? " · up to date" : " · reading…"}
      </p>
      <div class="table-wrap">
        <table class="events">
          <caption class="visually-hidden">Raw events</caption>
          <thead>
            <tr>
              <th scope="col" class="num">
                Offset
              </th>
              <th scope="col">Type</th>
              <th scope="col">Time</th>
              <th scope="col">Payload</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((event) => (
              <tr key={event.offset} data-offset={event.offset} data-type={event.type ?? ""}>
                <td class="num mono">{event.offset}</td>
                <td class="mono small">{event.type ?? "(untyped)"}</td>
                <td class="small nowrap">{event.createdAt ? formatClock(event.createdAt) : "—"}</td>
                <td>
                  <details>
                    <summary class="mono small">{preview(event.payload)}</summary>
                    <pre class="code">{prettyJson(event.payload)}</pre>
                    {event.idempotencyKey && (
                      <p class="small mono">idempotency key: {event.idempotencyKey}</p>
                    )}
                    {event.metadata !== undefined && (
                      <pre class="code small">{prettyJson(event.metadata)}</pre>
                    )}
                  </details>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function preview(payload: unknown): string {
  const text = prettyJson(payload, 400).replace(/\s+/g, " ");
  return text.length > 90 ? `${text.slice(0, 90)}…` : text;
}
