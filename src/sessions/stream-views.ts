/**
 * The sessions' read views of a session stream, given to the Stream Durable Object as its
 * read-view hook (src/streams/protocol/views.ts), so that the streams layer never learns
 * what a session is: `client` (src/sessions/client-view.ts) or `full` (every event), and
 * their EventSource format: one unnamed SSE event (so `onmessage` fires) per event of the
 * view, `id:` carrying its integer offset so that a browser's automatic `Last-Event-ID`
 * resumes exactly after it. The data is the event as JSON (with `offset`); a final `closed`
 * event marks a closed stream.
 */
import type { PageMessage } from "../streams/log";
import { decodeEvent } from "../streams/messages";
import type { ReadView, ReadViews } from "../streams/protocol/views";
import { type SessionView, toClientEvent } from "./client-view";

function sessionView(view: SessionView): ReadView {
  return {
    events(messages: PageMessage[]): unknown[] {
      const out: unknown[] = [];
      for (const m of messages) {
        const event = decodeEvent(m.offset, m.body, m.createdAt);
        const shown = view === "full" ? event : toClientEvent(event);
        if (shown !== null) out.push(shown);
      }
      return out;
    },
    eventSource(events: unknown[], closed: boolean): string {
      let out = "";
      for (const event of events as { offset: number }[]) {
        out += `id: ${event.offset}\ndata: ${JSON.stringify(event)}\n\n`;
      }
      if (closed) out += `event: closed\ndata: {}\n\n`;
      return out;
    },
  };
}

export const sessionReadViews: ReadViews = new Map<SessionView, ReadView>([
  ["client", sessionView("client")],
  ["full", sessionView("full")],
]);
