/**
 * Stream-Cursor values (protocol §8.1): the number of 20-second intervals since
 * 2024-10-09T00:00:00Z. A client that echoes a cursor at or past the current interval gets
 * one strictly greater (plus 1-3600 s of jitter), so cursors never repeat and CDN keys
 * keep moving.
 */
const EPOCH_MS = Date.UTC(2024, 9, 9);
const INTERVAL_MS = 20_000;

export function nextCursor(now: number, clientCursor: string | null, random = Math.random): string {
  const current = Math.floor((now - EPOCH_MS) / INTERVAL_MS);
  const echoed =
    clientCursor !== null && /^[0-9]{1,15}$/.test(clientCursor) ? Number(clientCursor) : null;
  if (echoed === null || echoed < current) return String(current);
  const jitterSeconds = 1 + Math.floor(random() * 3600);
  return String(echoed + Math.max(1, Math.ceil((jitterSeconds * 1000) / INTERVAL_MS)));
}
