/**
 * Stream paths name a stream and therefore its Durable Object. They are validated once, at
 * the edge, so that every DO name is well-formed: printable URL-safe characters, at most
 * 512 bytes, and no empty, `.` or `..` segments (no traversal, no aliasing of one stream
 * under two spellings).
 */
import { invalidInput } from "../errors/domain";

export const MAX_PATH_BYTES = 512;
const SEGMENT = /^[A-Za-z0-9._~:@!$'()*+=-]+$/;

/** Returns the canonical path (`/a/b`) or throws a 400 that names the reason. */
export function validateStreamPath(raw: string): string {
  const path = raw.startsWith("/") ? raw : `/${raw}`;
  const fail = (reason: string) =>
    invalidInput(`invalid stream path: ${reason}`, { path: path.slice(0, 80) }, "invalid_path");
  if (path === "/") throw fail("empty path");
  if (new TextEncoder().encode(path).byteLength > MAX_PATH_BYTES) {
    throw fail(`longer than ${MAX_PATH_BYTES} bytes`);
  }
  const segments = path.slice(1).split("/");
  for (const segment of segments) {
    if (segment === "") throw fail("empty segment");
    if (segment === "." || segment === "..") throw fail(`'${segment}' segment`);
    if (!SEGMENT.test(segment))
      throw fail(`segment '${segment.slice(0, 40)}' has a disallowed character`);
  }
  return path;
}
