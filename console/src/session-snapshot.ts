/**
 * Reload resumes where it was: the reduced view of the open session is kept in
 * sessionStorage with the offset it reflects, so a reload shows it at once and reads only the
 * events after that offset (`Last-Event-ID`), not the whole history again. One snapshot at a
 * time (opening another session replaces it) and at most MAX_BYTES, so storage stays bounded;
 * a snapshot that is missing, too big or unreadable just means a replay from the start.
 */
import { type ConsoleView, initialConsoleView } from "./console-view";

const PREFIX = "das-console.view.";
const MAX_BYTES = 1_000_000;

export function loadSnapshot(sessionId: string): ConsoleView | null {
  const raw = sessionStorage.getItem(PREFIX + sessionId);
  if (raw === null) return null;
  try {
    const value = JSON.parse(raw) as ConsoleView;
    if (
      typeof value !== "object" ||
      value === null ||
      typeof value.lastOffset !== "number" ||
      !Array.isArray(value.messages) ||
      !Array.isArray(value.pendingApprovals) ||
      !Array.isArray(value.denied)
    ) {
      throw new Error("not a view");
    }
    return { ...initialConsoleView, ...value };
  } catch {
    sessionStorage.removeItem(PREFIX + sessionId);
    return null;
  }
}

export function saveSnapshot(sessionId: string, view: ConsoleView): void {
  const raw = JSON.stringify(view);
  forgetSnapshots(sessionId);
  if (raw.length > MAX_BYTES) return;
  try {
    sessionStorage.setItem(PREFIX + sessionId, raw);
  } catch {
    // Storage full: the next reload replays from the start instead.
  }
}

/** Drops every snapshot except `keep`'s. */
export function forgetSnapshots(keep?: string): void {
  for (let i = sessionStorage.length - 1; i >= 0; i--) {
    const key = sessionStorage.key(i);
    if (key?.startsWith(PREFIX) && key !== PREFIX + keep) sessionStorage.removeItem(key);
  }
}
