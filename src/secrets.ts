/**
 * Small Web Crypto helpers for keys and tokens: random material, url-safe encoding, SHA-256,
 * and a constant-time comparison that leaks neither content nor length (both sides are
 * hashed to 32 bytes first, then compared with `crypto.subtle.timingSafeEqual`). A neutral
 * module: `auth/` (which reads the stores in `db/`) and `db/` (key hashes, cursors) both use
 * it, so neither folder has to import the other's internals back.
 */

const encoder = new TextEncoder();

export function randomBytes(length: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(length));
}

export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

export function fromHex(hex: string): Uint8Array | null {
  if (hex.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(hex)) return null;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function toBase64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Decodes base64url (no padding); null when the text is not valid base64url. */
export function fromBase64Url(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  try {
    const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
  } catch {
    return null;
  }
}

export async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

export async function sha256Hex(text: string): Promise<string> {
  return toHex(await sha256(text));
}

/** Constant-time equality of two byte strings of the same length. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  return crypto.subtle.timingSafeEqual(a, b);
}

/**
 * The SHA-256 of a secret this deployment is configured with (an env value such as
 * DEV_API_KEY or ADMIN_TOKEN), computed once per distinct value instead of on every request.
 * Only configured values come here, never what a client sent; bounded all the same.
 */
const configuredDigests = new Map<string, Uint8Array>();
const MAX_CONFIGURED_DIGESTS = 8;

export async function configuredDigest(secret: string): Promise<Uint8Array> {
  const known = configuredDigests.get(secret);
  if (known !== undefined) return known;
  const digest = await sha256(secret);
  if (configuredDigests.size >= MAX_CONFIGURED_DIGESTS) {
    configuredDigests.delete(configuredDigests.keys().next().value as string);
  }
  configuredDigests.set(secret, digest);
  return digest;
}

/** Whether `presented` (the SHA-256 of what a client sent) is the configured secret `expected`. */
export async function digestMatches(presented: Uint8Array, expected: string): Promise<boolean> {
  return bytesEqual(presented, await configuredDigest(expected));
}

/**
 * Constant-time equality of a presented secret and a configured one, of any lengths (compares
 * their SHA-256 digests; the configured side's is computed once, `configuredDigest`).
 */
export async function secretsEqual(presented: string, expected: string): Promise<boolean> {
  return digestMatches(await sha256(presented), expected);
}
