/**
 * What an append or a create carries, turned into messages and checked before anything is
 * written: the body parsed per the stream's content type, the reserved `stream/` events
 * (only the Stream DO itself may append them, with valid payloads) and the processor
 * idempotency keys (only processors' own appends may use them).
 */
import { conflict, invalidInput } from "../errors/domain";
import { isJsonType, mediaType, sameContentType } from "./content-type";
import { isProcessorKey } from "./idempotency-keys";
import type { StreamMeta } from "./log";
import { type EncodedMessage, encodeBytesBody, encodeJsonBody } from "./messages";
import { isReservedType, type SystemEventType, systemEventSchemas } from "./system-events";

/** What an append carries: raw HTTP bytes (parsed per the stream's mode), typed events, or nothing (close only). */
export type AppendBody =
  | { kind: "bytes"; bytes: Uint8Array; contentType: string | null }
  | { kind: "messages"; messages: EncodedMessage[] }
  | null;

/** A reserved event of a batch, with its index, for the hosting object to reduce. */
export interface ReservedEvent {
  index: number;
  type: SystemEventType;
  payload: unknown;
}

/**
 * Reserved `stream/` events may only come from the Stream DO itself, and their payloads
 * must match their schemas. Returns them (with their batch index) for reduction.
 */
export function checkReserved(messages: EncodedMessage[], system: boolean): ReservedEvent[] {
  const out: ReservedEvent[] = [];
  messages.forEach((message, index) => {
    if (!isReservedType(message.type)) return;
    if (!system) {
      throw invalidInput(
        `event type ${message.type} is reserved for the stream itself; use the subscription API`,
        { index },
        "reserved_event_type",
      );
    }
    const type = message.type as SystemEventType;
    const schema = Object.hasOwn(systemEventSchemas, type) ? systemEventSchemas[type] : undefined;
    if (!schema) throw new Error(`unknown system event type ${type}`);
    const payload = (JSON.parse(message.body as string) as { payload: unknown }).payload;
    out.push({ index, type, payload: schema.parse(payload) });
  });
  return out;
}

/** Processor idempotency keys are refused on any append that is not a processor's. */
export function checkClientKeys(messages: EncodedMessage[]): void {
  messages.forEach((message, index) => {
    if (message.idempotencyKey !== null && isProcessorKey(message.idempotencyKey)) {
      throw invalidInput(
        `idempotency key ${JSON.stringify(message.idempotencyKey.slice(0, 200))} has the form <processor>/<key>@<offset>, which is reserved for processors' own appends`,
        { index },
        "reserved_idempotency_key",
      );
    }
  });
}

/** The messages of an append body, checked against the stream's content type. */
export function messagesOf(body: AppendBody, meta: StreamMeta): EncodedMessage[] {
  if (body === null) return [];
  if (body.kind === "messages") {
    if (!isJsonType(meta.content_type)) {
      throw conflict(
        `typed events need an application/json stream; this one is ${meta.content_type}`,
      );
    }
    return body.messages;
  }
  if (body.contentType === null) throw invalidInput("Content-Type is required on an append");
  if (!sameContentType(body.contentType, meta.content_type)) {
    throw conflict(
      `Content-Type ${mediaType(body.contentType)} does not match the stream's ${meta.content_type}`,
    );
  }
  return parseBody(meta.content_type, body.bytes, false);
}

/** A JSON stream's body is a message or an array of them; any other type is one message. */
export function parseBody(
  contentType: string,
  bytes: Uint8Array,
  isCreate: boolean,
): EncodedMessage[] {
  if (!isJsonType(contentType)) return [encodeBytesBody(bytes)];
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw invalidInput("body is not valid UTF-8", undefined, "invalid_json");
  }
  return encodeJsonBody(text, isCreate);
}
