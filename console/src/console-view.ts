/**
 * The console's view of a session: the shipped client's SessionView plus the ids of tool
 * calls a person denied. The client's reducer records a denied call as `failed` once its
 * (error) result arrives; an operator reading the transcript should see "denied", so the
 * console remembers denials itself. Same purity and idempotence as reduceSessionView (whose
 * object spreads carry the extra field along).
 */
import {
  initialSessionView,
  reduceSessionView,
  type SessionEvent,
  type SessionView,
} from "@server/client";

export interface ConsoleView extends SessionView {
  denied: string[];
}

export const initialConsoleView: ConsoleView = { ...initialSessionView, denied: [] };

export function reduceConsoleView(view: ConsoleView, event: SessionEvent): ConsoleView {
  const next = reduceSessionView(view, event) as ConsoleView;
  if (next === view) return view;
  if (
    event.type === "tool/approval-decided" &&
    !event.payload.approved &&
    !view.denied.includes(event.payload.toolCallId)
  ) {
    return { ...next, denied: [...view.denied, event.payload.toolCallId] };
  }
  return next;
}
