/**
 * Stream expiry rules, shared by the HTTP headers (`Stream-TTL`, `Stream-Expires-At`) and
 * the RPC door (`ttlSeconds`, `expiresAt`), and applied again to the stored metadata row.
 *
 * Why bounds: an expiry becomes a Durable Object alarm, and the platform refuses alarm
 * dates beyond its range ("This API doesn't support dates after 2189"); `Date` itself
 * cannot print times beyond ±8.64e15 ms. An unbounded TTL therefore stored state that made
 * every later request on the stream fail with a 500. The allowed range is:
 * - `Stream-TTL`: 0 … MAX_TTL_SECONDS (10 years);
 * - `Stream-Expires-At`: from EXPIRES_AT_SKEW_MS (5 minutes, for clock skew) in the past
 *   to MAX_TTL_SECONDS in the future. A time in the skew window expires the stream at once.
 * Timestamps are strict RFC 3339 (`date-time`): the calendar date must exist (no
 * 2030-02-30, February 29 only in leap years), hours 00–23, minutes 00–59, seconds 00–60
 * (a leap second is read as :59), offsets ±00:00–±23:59.
 *
 * Records stored before these bounds existed are normalised when read back
 * (`normaliseStoredExpiry`): a stream must stay readable whatever its metadata says.
 */
import { type InvalidInputCode, invalidInput } from "../errors/domain";

/** 10 years of 365 days. */
export const MAX_TTL_SECONDS = 10 * 365 * 24 * 60 * 60;
export const MAX_TTL_MS = MAX_TTL_SECONDS * 1000;
/** How far in the past an absolute expiry may lie (clock skew between client and server). */
export const EXPIRES_AT_SKEW_MS = 5 * 60 * 1000;
/**
 * The latest expiry ever stored or scheduled, whatever the record says: far below the
 * platform's alarm limit (2189) and Date's range, far above any date the rules above allow.
 */
export const EXPIRY_CEILING_MS = Date.UTC(2150, 0, 1);

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

const daysIn = (year: number, month: number) =>
  month === 2
    ? (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0
      ? 29
      : 28
    : [4, 6, 9, 11].includes(month)
      ? 30
      : 31;

/** Strict RFC 3339 `date-time` → epoch milliseconds, or null when it is not one. */
export function parseRfc3339(text: string): number | null {
  const m = RFC3339.exec(text);
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 60) return null;
  let offsetMinutes = 0;
  if (!m[8]) {
    const [oh, om] = [Number(m[10]), Number(m[11])];
    if (oh > 23 || om > 59) return null;
    offsetMinutes = (m[9] === "-" ? -1 : 1) * (oh * 60 + om);
  }
  const fraction = m[7] ? Math.floor(Number(`0${m[7]}`) * 1000) : 0;
  // Date.UTC maps years 0–99 to 1900–1999; setUTCFullYear does not.
  const date = new Date(Date.UTC(2000, month - 1, day, hour, minute, Math.min(second, 59)));
  date.setUTCFullYear(year);
  return date.getTime() + fraction - offsetMinutes * 60_000;
}

const range = (now: number) =>
  `between ${new Date(now - EXPIRES_AT_SKEW_MS).toISOString()} and ${new Date(now + MAX_TTL_MS).toISOString()}`;

/** A TTL in seconds within 0 … MAX_TTL_SECONDS, or a 400 naming the range. */
export function checkTtl(
  ttlSeconds: number,
  name = "Stream-TTL",
  code: InvalidInputCode = "invalid_header",
): number {
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 0 || ttlSeconds > MAX_TTL_SECONDS) {
    throw invalidInput(
      `${name} must be an integer number of seconds from 0 to ${MAX_TTL_SECONDS} (10 years), got ${ttlSeconds}`,
      { min: 0, max: MAX_TTL_SECONDS },
      code,
    );
  }
  return ttlSeconds;
}

/** Parses an absolute expiry (strict RFC 3339) and checks it lies in the allowed window. */
export function parseExpiresAt(
  text: string,
  now: number,
  name = "Stream-Expires-At",
  code: InvalidInputCode = "invalid_header",
): number {
  const at = parseRfc3339(text);
  if (at === null) {
    throw invalidInput(
      `${name} must be an RFC 3339 timestamp with a real calendar date, got ${JSON.stringify(text.slice(0, 100))}`,
      undefined,
      code,
    );
  }
  if (at < now - EXPIRES_AT_SKEW_MS || at > now + MAX_TTL_MS) {
    throw invalidInput(
      `${name} must lie ${range(now)} (at most 10 years ahead), got ${JSON.stringify(text.slice(0, 100))}`,
      {
        min: new Date(now - EXPIRES_AT_SKEW_MS).toISOString(),
        max: new Date(now + MAX_TTL_MS).toISOString(),
      },
      code,
    );
  }
  return at;
}

/**
 * Read-back defence for the stored pair: a TTL above the maximum is read as the maximum,
 * and an expiry that is not a finite time within 0 … EXPIRY_CEILING_MS is clamped into it.
 * Returns null when the values are already in range (nothing to repair).
 */
export function normaliseStoredExpiry(
  ttlSeconds: number | null,
  expiresAt: number | null,
): { ttlSeconds: number | null; expiresAt: number | null } | null {
  let ttl = ttlSeconds;
  let at = expiresAt;
  if (ttl !== null && !(ttl <= MAX_TTL_SECONDS)) ttl = MAX_TTL_SECONDS;
  if (at !== null) {
    if (Number.isNaN(at)) at = EXPIRY_CEILING_MS;
    else at = Math.min(Math.max(Math.trunc(at), 0), EXPIRY_CEILING_MS);
  }
  return ttl === ttlSeconds && at === expiresAt ? null : { ttlSeconds: ttl, expiresAt: at };
}
