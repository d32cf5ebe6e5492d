/**
 * The console's credential: a tenant API key or a scoped session token, kept in
 * sessionStorage (this tab only, gone when it closes) — never in the URL, localStorage or a
 * log. A session token is a JWT; its claims are read here only to know which session it
 * opens and what it may do (the server verifies it on every request).
 */
export type Scope = "read" | "write" | "approve";

export type Credential =
  | { kind: "api-key"; secret: string }
  | {
      kind: "session-token";
      secret: string;
      sessionId: string;
      scopes: Scope[];
      /** Milliseconds since the epoch. */
      expiresAt: number;
    };

const STORAGE_KEY = "das-console.credential";

/** Reads a pasted credential; throws a message a person can act on. */
export function parseCredential(input: string): Credential {
  const secret = input.trim();
  if (secret === "") throw new Error("Paste an API key or a session token.");
  if (/\s/.test(secret)) throw new Error("A credential has no spaces or line breaks.");
  const parts = secret.split(".");
  if (parts.length !== 3) return { kind: "api-key", secret };
  const claims = decodeClaims(parts[1]!);
  if (claims === null) {
    throw new Error("This looks like a token, but its claims cannot be read.");
  }
  return { kind: "session-token", secret, ...claims };
}

function decodeClaims(
  segment: string,
): { sessionId: string; scopes: Scope[]; expiresAt: number } | null {
  try {
    const base64 = segment.replace(/-/g, "+").replace(/_/g, "/");
    const json = new TextDecoder().decode(
      Uint8Array.from(atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, "=")), (c) =>
        c.charCodeAt(0),
      ),
    );
    const claims: unknown = JSON.parse(json);
    if (typeof claims !== "object" || claims === null) return null;
    const { sid, scp, exp } = claims as Record<string, unknown>;
    if (typeof sid !== "string" || !/^[0-9A-HJKMNP-TV-Z]{26}$/.test(sid)) return null;
    if (!Array.isArray(scp) || typeof exp !== "number") return null;
    const scopes = scp.filter((s): s is Scope => s === "read" || s === "write" || s === "approve");
    return { sessionId: sid, scopes, expiresAt: exp * 1000 };
  } catch {
    return null;
  }
}

export function loadCredential(): Credential | null {
  const raw = sessionStorage.getItem(STORAGE_KEY);
  if (raw === null) return null;
  try {
    return parseCredential(raw);
  } catch {
    sessionStorage.removeItem(STORAGE_KEY);
    return null;
  }
}

export function saveCredential(credential: Credential): void {
  sessionStorage.setItem(STORAGE_KEY, credential.secret);
}

export function clearCredential(): void {
  sessionStorage.removeItem(STORAGE_KEY);
}

/** What this credential may do (an API key may do everything). */
export function can(credential: Credential, scope: Scope | "operate"): boolean {
  if (credential.kind === "api-key") return true;
  return scope !== "operate" && credential.scopes.includes(scope);
}
