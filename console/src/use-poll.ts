/**
 * Polling that follows the page: `load` runs now, then every `intervalMs` while the tab is
 * visible (a hidden tab does not poll), and again as soon as it becomes visible. Its result
 * and the last error are kept; a failure keeps the last good data and is shown, and polling
 * goes on (the next success clears the error).
 */
import { useCallback, useEffect, useRef, useState } from "preact/hooks";

export interface Poll<T> {
  data: T | null;
  error: unknown;
  loading: boolean;
  updatedAt: number | null;
  refresh: () => void;
}

export function usePoll<T>(
  load: (signal: AbortSignal) => Promise<T>,
  deps: unknown[],
  intervalMs: number,
): Poll<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [updatedAt, setUpdatedAt] = useState<number | null>(null);
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;

  // New inputs: forget the old data.
  useEffect(() => {
    setData(null);
    setError(null);
    setLoading(true);
  }, deps);
  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      clearTimeout(timer);
      if (document.visibilityState === "hidden") return;
      try {
        const value = await loadRef.current(controller.signal);
        if (controller.signal.aborted) return;
        setData(value);
        setError(null);
        setUpdatedAt(Date.now());
      } catch (e) {
        if (controller.signal.aborted) return;
        setError(e);
      } finally {
        if (!controller.signal.aborted) {
          setLoading(false);
          timer = setTimeout(run, intervalMs);
        }
      }
    };
    const onVisible = () => {
      if (document.visibilityState === "visible") void run();
    };
    document.addEventListener("visibilitychange", onVisible);
    void run();
    return () => {
      controller.abort();
      clearTimeout(timer);
      document.removeEventListener("visibilitychange", onVisible);
    };
  }, [...deps, tick, intervalMs]);

  const refresh = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, updatedAt, refresh };
}
