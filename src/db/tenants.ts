/**
 * Tenants and their API keys. A key reads `das_<prefix>_<secret>`: the 8-hex-digit prefix is
 * public (it names the key in listings and revocations and is how a key is looked up); the
 * secret is 32 random bytes, base64url. Only the SHA-256 of the whole key is stored, and the
 * plain key is returned exactly once, by `createApiKey`.
 */
import { and, eq, isNull, sql } from "drizzle-orm";
import { ulid } from "ulidx";
import { z } from "zod";
import { conflict, notFound } from "../errors/domain";
import { bytesEqual, fromHex, randomBytes, sha256, toBase64Url, toHex } from "../secrets";
import type { Db } from "./client";
import { apiKeys, type TenantRow, tenants } from "./schema";

/** Tenant ids appear in stream Durable Object names (`<tenant>:<path>`): no `:` or `/`. */
export const tenantIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, "1-64 characters of A-Z a-z 0-9 _ -");

export const KEY_PREFIX = "das";
const KEY_PATTERN = /^das_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$/;

/** The public prefix of a well-formed key, or null when the text cannot be one of our keys. */
export function parseApiKey(key: string): { prefix: string } | null {
  const match = KEY_PATTERN.exec(key);
  return match ? { prefix: match[1]! } : null;
}

export async function createTenant(
  db: Db,
  input: { id?: string; name: string },
  now = Date.now(),
): Promise<TenantRow> {
  const id = input.id ?? ulid().toLowerCase();
  const inserted = await db
    .insert(tenants)
    .values({ id, name: input.name, createdAt: now })
    .onConflictDoNothing()
    .returning();
  const tenant = inserted[0];
  if (!tenant) throw conflict(`tenant ${id} already exists`);
  return tenant;
}

export async function getTenant(db: Db, id: string): Promise<TenantRow | null> {
  return (await db.select().from(tenants).where(eq(tenants.id, id)).get()) ?? null;
}

export interface CreatedApiKey {
  id: string;
  tenantId: string;
  name: string;
  prefix: string;
  /** The plain key: shown once, never stored. */
  key: string;
  createdAt: number;
}

/** Mints a key for an existing tenant (404 otherwise). */
export async function createApiKey(
  db: Db,
  tenantId: string,
  name: string,
  now = Date.now(),
): Promise<CreatedApiKey> {
  if (!(await getTenant(db, tenantId))) throw notFound(`tenant ${tenantId} not found`);
  // A prefix collision (1 in 2^32 per existing key) is retried with a fresh key.
  for (let attempt = 0; attempt < 5; attempt++) {
    const prefix = toHex(randomBytes(4));
    const key = `${KEY_PREFIX}_${prefix}_${toBase64Url(randomBytes(32))}`;
    const id = ulid();
    const inserted = await db
      .insert(apiKeys)
      .values({ id, tenantId, prefix, hash: toHex(await sha256(key)), name, createdAt: now })
      .onConflictDoNothing({ target: apiKeys.prefix })
      .returning({ id: apiKeys.id });
    if (inserted.length > 0) return { id, tenantId, name, prefix, key, createdAt: now };
  }
  throw new Error("could not allocate a unique API key prefix");
}

/**
 * The live key row of a prefix, as a drizzle prepared query: every API-key request reads it,
 * so its SQL is built once per client (db/client.ts keeps one per binding).
 */
function prepareKeyLookup(db: Db) {
  return db
    .select({ tenantId: apiKeys.tenantId, hash: apiKeys.hash })
    .from(apiKeys)
    .where(and(eq(apiKeys.prefix, sql.placeholder("prefix")), isNull(apiKeys.revokedAt)))
    .prepare();
}

const keyLookups = new WeakMap<Db, ReturnType<typeof prepareKeyLookup>>();

/**
 * The tenant a key belongs to, or null for an unknown, malformed or revoked key. The lookup
 * is by public prefix; the secret part is checked by comparing SHA-256 digests in constant
 * time. `digest` is the key's SHA-256 when the caller has already computed it.
 */
export async function findTenantByKey(
  db: Db,
  key: string,
  digest?: Uint8Array,
): Promise<string | null> {
  const parsed = parseApiKey(key);
  if (!parsed) return null;
  const presented = digest ?? (await sha256(key));
  let lookup = keyLookups.get(db);
  if (lookup === undefined) {
    lookup = prepareKeyLookup(db);
    keyLookups.set(db, lookup);
  }
  const row = await lookup.get({ prefix: parsed.prefix });
  if (!row) return null;
  const stored = fromHex(row.hash);
  return stored && bytesEqual(presented, stored) ? row.tenantId : null;
}

/**
 * Revokes a tenant's key by prefix. Revoking an already revoked key keeps its first
 * revocation time and still counts as found. Returns false when the tenant has no such key.
 */
export async function revokeApiKey(
  db: Db,
  tenantId: string,
  prefix: string,
  now = Date.now(),
): Promise<boolean> {
  const updated = await db
    .update(apiKeys)
    .set({ revokedAt: sql`coalesce(${apiKeys.revokedAt}, ${now})` })
    .where(and(eq(apiKeys.tenantId, tenantId), eq(apiKeys.prefix, prefix)))
    .returning({ id: apiKeys.id });
  return updated.length > 0;
}
