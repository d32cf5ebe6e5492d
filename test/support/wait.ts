/**
 * Waiting in tests. `waitFor` polls a condition until it holds: event-driven tests use it
 * instead of fixed sleeps. `pause` is the one fixed sleep, for the few tests about time
 * itself (a TTL running out, alarms over a window) or about something that must NOT happen
 * within a window, where there is no condition to await; each call says why.
 */
export async function waitFor(
  check: () => Promise<boolean> | boolean,
  timeoutMs = 10_000,
  everyMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A fixed wait: only where time passing is what the test is about (see above). */
export const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
