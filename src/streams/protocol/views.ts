/**
 * Read views: other formats of a JSON stream's events than the protocol's, supplied by the
 * app that hosts the streams (the sessions' client and full views, src/sessions/). The
 * streams layer only knows the hook: the router names a view in an internal header, and a
 * read in a view answers that view's events (and accepts integer offsets too); an
 * EventSource read frames them as the view says.
 */
import type { PageMessage } from "../log";

export interface ReadView {
  /** The events of a page as this view shows them, in order (left-out events are skipped). */
  events(messages: PageMessage[]): unknown[];
  /** The EventSource text for a chunk's events ("" sends nothing); `closed`: the stream ended. */
  eventSource(events: unknown[], closed: boolean): string;
}

/** Views by the name the router puts in the internal view header. */
export type ReadViews = ReadonlyMap<string, ReadView>;

export const NO_VIEWS: ReadViews = new Map();
