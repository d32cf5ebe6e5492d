/**
 * A stream stores messages; some messages are typed events. This module is the one place
 * that maps between the two views so that the RPC view (typed events) and the HTTP view
 * (Durable Streams messages) always agree on what sits at an offset:
 * - a JSON message that is an object with a string `type` is an event of that type, and its
 *   `payload`, `metadata` and `idempotencyKey` fields are read from it;
 * - any other message is kept verbatim and has no type;
 * - an event appended over RPC is stored as the JSON message `{type, payload, metadata?,
 *   idempotencyKey?}`, so HTTP readers see exactly that object.
 */
import { z } from "zod";
import { type DomainError, invalidInput, tooLarge as refusedAsTooLarge } from "../errors/domain";
import { parseJson } from "../errors/parse";

/** ~2 MB is the SQLite row limit in a Durable Object; keep headroom for the other columns. */
export const MAX_MESSAGE_BYTES = 1_900_000;

export const eventTypeSchema = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/, "event types read like `domain/past-tense-verb`");

export const eventInputSchema = z.strictObject({
  type: eventTypeSchema,
  payload: z.unknown(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  idempotencyKey: z.string().min(1).max(512).optional(),
});
export type EventInput = z.infer<typeof eventInputSchema>;

/** Any JSON value (spelled out so that Workers RPC stubs keep the type). */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue };

/**
 * An event as readers see it. `type` is null for an untyped message, whose value is then
 * `payload` (bytes for a byte stream).
 */
export interface StreamEvent {
  offset: number;
  type: string | null;
  payload: JsonValue | Uint8Array;
  metadata?: Record<string, JsonValue>;
  idempotencyKey?: string;
  createdAt: string;
}

/** A message ready to be committed: its stored body plus what is indexed about it. */
export interface EncodedMessage {
  body: string | Uint8Array;
  type: string | null;
  idempotencyKey: string | null;
}

const encoder = new TextEncoder();

function byteLength(body: string | Uint8Array): number {
  return typeof body === "string" ? encoder.encode(body).byteLength : body.byteLength;
}

function tooLarge(bytes: number): DomainError {
  return refusedAsTooLarge(
    `message of ${bytes} bytes exceeds the ${MAX_MESSAGE_BYTES}-byte limit of one stored message`,
  );
}

function checkSize(body: string | Uint8Array): void {
  // Cheap bound first: a UTF-16 string never has more UTF-8 bytes than 3x its length.
  if (typeof body === "string" && body.length * 3 <= MAX_MESSAGE_BYTES) return;
  const bytes = byteLength(body);
  if (bytes > MAX_MESSAGE_BYTES) throw tooLarge(bytes);
}

/** Reads the event fields of a parsed JSON message, if it is an event. */
function eventFields(value: unknown): { type: string; idempotencyKey: string | null } | null {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return null;
  const record = value as Record<string, unknown>;
  if (typeof record.type !== "string") return null;
  const key = record.idempotencyKey;
  return { type: record.type, idempotencyKey: typeof key === "string" && key !== "" ? key : null };
}

/** Encodes one typed event (already validated) as the JSON message that is stored. */
export function encodeEvent(event: EventInput): EncodedMessage {
  const message: Record<string, unknown> = { type: event.type, payload: event.payload ?? null };
  if (event.metadata !== undefined) message.metadata = event.metadata;
  if (event.idempotencyKey !== undefined) message.idempotencyKey = event.idempotencyKey;
  const body = JSON.stringify(message);
  checkSize(body);
  return { body, type: event.type, idempotencyKey: event.idempotencyKey ?? null };
}

/**
 * Splits a JSON-mode POST/PUT body into messages: one level of array is flattened, each
 * element re-serialised compactly. `allowEmptyArray` is for PUT, where `[]` creates an
 * empty stream; on POST an empty array is a client error.
 */
export function encodeJsonBody(text: string, allowEmptyArray: boolean): EncodedMessage[] {
  const value = parseJson(text);
  const values = Array.isArray(value) ? value : [value];
  if (values.length === 0 && !allowEmptyArray) {
    throw invalidInput("an empty JSON array appends nothing", undefined, "invalid_json");
  }
  return values.map((item) => {
    const body = JSON.stringify(item);
    checkSize(body);
    const fields = eventFields(item);
    return { body, type: fields?.type ?? null, idempotencyKey: fields?.idempotencyKey ?? null };
  });
}

/** A byte-mode body is one message. */
export function encodeBytesBody(bytes: Uint8Array): EncodedMessage {
  checkSize(bytes);
  return { body: bytes, type: null, idempotencyKey: null };
}

/** Turns a stored row back into the event view. */
export function decodeEvent(
  offset: number,
  body: string | ArrayBuffer,
  createdAt: number,
): StreamEvent {
  const at = new Date(createdAt).toISOString();
  if (typeof body !== "string")
    return { offset, type: null, payload: new Uint8Array(body), createdAt: at };
  const value = JSON.parse(body) as JsonValue;
  const fields = eventFields(value);
  if (!fields) return { offset, type: null, payload: value, createdAt: at };
  const record = value as Record<string, JsonValue>;
  const event: StreamEvent = {
    offset,
    type: fields.type,
    payload: record.payload ?? null,
    createdAt: at,
  };
  if (
    record.metadata !== null &&
    typeof record.metadata === "object" &&
    !Array.isArray(record.metadata)
  ) {
    event.metadata = record.metadata as Record<string, JsonValue>;
  }
  if (fields.idempotencyKey !== null) event.idempotencyKey = fields.idempotencyKey;
  return event;
}
