/**
 * Content types decide a stream's mode: `application/json` streams keep message boundaries
 * and read back as JSON arrays; every other type is a byte stream. Comparisons use the
 * lower-cased media type without parameters, so `Application/JSON; charset=utf-8` and
 * `application/json` name the same mode.
 */
export const DEFAULT_CONTENT_TYPE = "application/octet-stream";

export function mediaType(contentType: string): string {
  return (contentType.split(";")[0] ?? "").trim().toLowerCase();
}

export const isJsonType = (contentType: string) => mediaType(contentType) === "application/json";

export const isTextType = (contentType: string) => mediaType(contentType).startsWith("text/");

/** SSE carries text and JSON as is; any other type is base64-encoded in `data` events. */
export const isSseBinary = (contentType: string) =>
  !isJsonType(contentType) && !isTextType(contentType);

export const sameContentType = (a: string, b: string) => mediaType(a) === mediaType(b);

/** A syntactically valid `type/subtype` media type. */
export function isValidContentType(contentType: string): boolean {
  return /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(mediaType(contentType));
}
