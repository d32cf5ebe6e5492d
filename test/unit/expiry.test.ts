/** Stream expiry (src/streams/expiry.ts): strict RFC 3339 timestamps and TTL / Expires-At bounds. */
import { describe, expect, it } from "vitest";
import { DomainError } from "../../src/errors/domain";
import { statusOf } from "../../src/errors/http";
import {
  checkTtl,
  EXPIRY_CEILING_MS,
  MAX_TTL_SECONDS,
  normaliseStoredExpiry,
  parseExpiresAt,
  parseRfc3339,
} from "../../src/streams/expiry";

describe("strict RFC 3339", () => {
  it.each([
    ["2030-02-28T00:00:00Z", Date.UTC(2030, 1, 28)],
    ["2028-02-29T00:00:00Z", Date.UTC(2028, 1, 29)], // leap year
    ["2000-02-29T12:00:00Z", Date.UTC(2000, 1, 29, 12)], // divisible by 400
    ["2030-04-30T23:59:59.999Z", Date.UTC(2030, 3, 30, 23, 59, 59, 999)],
    ["2030-01-01T01:00:00+01:00", Date.UTC(2030, 0, 1)],
    ["2029-12-31T19:30:00-04:30", Date.UTC(2030, 0, 1)],
    ["2030-01-01t00:00:00z", Date.UTC(2030, 0, 1)],
  ])("%s is read exactly", (text, ms) => {
    expect(parseRfc3339(text)).toBe(ms);
  });

  it("years below 100 are not read as 19xx", () => {
    expect(new Date(parseRfc3339("0050-06-01T00:00:00Z")!).getUTCFullYear()).toBe(50);
  });

  it.each([
    "2030-02-30T00:00:00Z", // rolled over to March 2 before
    "2030-02-29T00:00:00Z", // not a leap year
    "1900-02-29T00:00:00Z", // divisible by 100, not by 400
    "2030-04-31T00:00:00Z",
    "2030-13-01T00:00:00Z",
    "2030-00-10T00:00:00Z",
    "2030-01-00T00:00:00Z",
    "2030-01-01T25:00:00Z",
    "2030-01-01T24:00:00Z",
    "2030-01-01T00:60:00Z",
    "2030-01-01T00:00:61Z",
    "2030-01-01T00:00:00+24:00",
    "2030-01-01T00:00:00+01:60",
    "2030-01-01T00:00Z", // seconds are required
    "2030-01-01 00:00:00Z",
    "2030-01-01T00:00:00", // offset is required
    "not-a-timestamp",
    "",
  ])("%s is refused", (text) => {
    expect(parseRfc3339(text)).toBeNull();
  });
});

describe("expiry bounds", () => {
  const now = Date.UTC(2026, 11, 1);
  const status = (fn: () => unknown) => {
    try {
      fn();
    } catch (error) {
      expect(error).toBeInstanceOf(DomainError);
      return { status: statusOf(error as DomainError), message: (error as DomainError).message };
    }
    return null;
  };

  it("TTL 0 … 10 years is accepted; beyond is a 400 naming the range", () => {
    expect(checkTtl(0)).toBe(0);
    expect(checkTtl(MAX_TTL_SECONDS)).toBe(MAX_TTL_SECONDS);
    for (const ttl of [MAX_TTL_SECONDS + 1, 100_000_000_000, Number.MAX_SAFE_INTEGER, -1, 1.5]) {
      const refused = status(() => checkTtl(ttl));
      expect(refused?.status).toBe(400);
      expect(refused?.message).toContain(String(MAX_TTL_SECONDS));
    }
  });

  it("Expires-At must lie between 5 minutes ago and 10 years ahead", () => {
    expect(parseExpiresAt("2027-01-01T00:00:00Z", now)).toBe(Date.UTC(2027, 0, 1));
    expect(parseExpiresAt("2026-11-30T23:56:00Z", now)).toBe(now - 4 * 60_000); // skew window
    for (const text of [
      "9999-12-31T23:59:59Z",
      "0001-01-01T00:00:00Z",
      "2036-12-01T00:00:00Z",
      "2026-11-30T23:50:00Z",
    ]) {
      const refused = status(() => parseExpiresAt(text, now));
      expect(refused?.status, text).toBe(400);
      expect(refused?.message).toMatch(/between .* and .*/);
    }
    expect(status(() => parseExpiresAt("2030-02-30T00:00:00Z", now))?.status).toBe(400);
  });

  it("stored values out of range are clamped when read back; in-range ones are left alone", () => {
    expect(normaliseStoredExpiry(3600, now + 3_600_000)).toBeNull();
    expect(normaliseStoredExpiry(null, null)).toBeNull();
    expect(normaliseStoredExpiry(Number.MAX_SAFE_INTEGER, 9.007e18)).toEqual({
      ttlSeconds: MAX_TTL_SECONDS,
      expiresAt: EXPIRY_CEILING_MS,
    });
    expect(normaliseStoredExpiry(null, Date.UTC(9999, 11, 31))).toEqual({
      ttlSeconds: null,
      expiresAt: EXPIRY_CEILING_MS,
    });
    expect(normaliseStoredExpiry(null, -62_135_596_800_000)).toEqual({
      ttlSeconds: null,
      expiresAt: 0,
    });
    // The ceiling is a date the platform's alarms and Date both accept.
    expect(new Date(EXPIRY_CEILING_MS).toISOString()).toBe("2150-01-01T00:00:00.000Z");
  });
});
