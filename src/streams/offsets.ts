/**
 * Wire offsets. Internally an offset is a dense integer: position N means "after message N"
 * (0 is the start) and the event at offset N is message N. On the wire the protocol wants
 * opaque tokens that sort lexicographically; we use the `<16 digits>_<16 digits>` shape that
 * Durable Streams clients and its conformance suite expect, with the position in the first
 * half and a zero second half (reserved). The sentinels `-1` and `now` are never produced.
 */
import { invalidInput } from "../errors/domain";

const WIDTH = 16;
const WIRE = /^([0-9]{16})_([0-9]{16})$/;
const ZERO_HALF = "0".repeat(WIDTH);

export function encodeOffset(position: number): string {
  if (!Number.isSafeInteger(position) || position < 0) {
    throw new RangeError(`offset position must be a non-negative integer, got ${position}`);
  }
  return `${String(position).padStart(WIDTH, "0")}_${ZERO_HALF}`;
}

export type OffsetQuery = { kind: "start" } | { kind: "now" } | { kind: "at"; position: number };

/** Parses a wire offset or sentinel; anything else is a 400 naming the value. */
export function parseOffset(raw: string | null | undefined): OffsetQuery {
  if (raw === null || raw === undefined) return { kind: "start" };
  if (raw === "-1") return { kind: "start" };
  if (raw === "now") return { kind: "now" };
  const match = WIRE.exec(raw);
  if (!match || match[2] !== ZERO_HALF) {
    throw invalidInput(
      `malformed offset ${JSON.stringify(raw.slice(0, 64))}: expected -1, now, or an offset taken from Stream-Next-Offset`,
      undefined,
      "invalid_offset",
    );
  }
  return { kind: "at", position: Number(match[1]) };
}

const INTEGER = /^(0|[1-9][0-9]{0,14})$/;

/**
 * Session routes speak integer offsets (an event's `offset`, `POST …/messages` → `{offset}`),
 * and accept the wire form as well: both name the same position, "after event N". This maps
 * an integer to the wire form and leaves everything else (wire offsets, `-1`, `now`, and
 * malformed input, which parseOffset rejects) unchanged.
 */
export function acceptIntegerOffset(raw: string | null): string | null {
  return raw !== null && INTEGER.test(raw) ? encodeOffset(Number(raw)) : raw;
}
