/**
 * The live view of one session: the shipped client's resumable `events()` iterator reduced
 * by its pure `reduceSessionView` (through console-view.ts). It starts from the snapshot a reload left (and
 * reads only the events after it) or from the beginning, and keeps the snapshot current.
 * `connection` tells the page whether it is live, reconnecting, or stopped and why.
 */

import { SessionClient } from "@server/client";
import { useEffect, useState } from "preact/hooks";
import type { ConsoleApi } from "./api";
import { type ConsoleView, initialConsoleView, reduceConsoleView } from "./console-view";
import { loadSnapshot, saveSnapshot } from "./session-snapshot";

export type Connection =
  | { state: "connecting" }
  | { state: "live" }
  | { state: "reconnecting"; attempt: number; error: string }
  | { state: "ended" }
  | { state: "failed"; error: unknown };

const SAVE_EVERY_MS = 300;

export function useSessionView(api: ConsoleApi, sessionId: string) {
  const [view, setView] = useState<ConsoleView>(
    () => loadSnapshot(sessionId) ?? initialConsoleView,
  );
  const [connection, setConnection] = useState<Connection>({ state: "connecting" });
  const [resumedFrom, setResumedFrom] = useState(0);

  useEffect(() => {
    const controller = new AbortController();
    let current = loadSnapshot(sessionId) ?? initialConsoleView;
    setView(current);
    setResumedFrom(current.lastOffset);
    setConnection({ state: "connecting" });

    let saveTimer: ReturnType<typeof setTimeout> | undefined;
    const saveNow = () => {
      clearTimeout(saveTimer);
      saveTimer = undefined;
      saveSnapshot(sessionId, current);
    };
    const scheduleSave = () => {
      saveTimer ??= setTimeout(saveNow, SAVE_EVERY_MS);
    };
    window.addEventListener("pagehide", saveNow);

    // The same client, with a fetch that reports when a connection is open.
    const observed = new SessionClient({
      baseUrl: location.origin,
      token: () => api.credential.secret,
      fetch: async (request) => {
        const response = await fetch(request);
        if (response.ok) setConnection({ state: "live" });
        return response;
      },
    });

    (async () => {
      try {
        for await (const event of observed.events(sessionId, {
          after: current.lastOffset,
          signal: controller.signal,
          onReconnect: ({ attempt, error }) =>
            setConnection({ state: "reconnecting", attempt, error: String(error) }),
        })) {
          const next = reduceConsoleView(current, event);
          if (next === current) continue;
          current = next;
          setView(next);
          scheduleSave();
        }
        if (!controller.signal.aborted) setConnection({ state: "ended" });
      } catch (error) {
        if (!controller.signal.aborted) setConnection({ state: "failed", error });
      }
    })();

    return () => {
      controller.abort();
      window.removeEventListener("pagehide", saveNow);
      saveNow();
    };
  }, [api, sessionId]);

  return { view, connection, resumedFrom };
}
