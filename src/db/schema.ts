/**
 * The D1 schema (drizzle). D1 holds tenants, their API keys (hashed) and the session index.
 * The index is a projection of the session streams, kept by the index processor; it can be
 * dropped and rebuilt from the streams at any time (see README, "Rebuilding the index").
 *
 * Change this file, then `npm run db:generate` writes the SQL migration into `migrations/`,
 * which `wrangler d1 migrations apply` runs (locally by `npm run dev` and the tests).
 */
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

export const tenants = sqliteTable("tenants", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  /** Milliseconds since the epoch. */
  createdAt: integer("created_at").notNull(),
});

export const apiKeys = sqliteTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    /** The short public part of the key (`das_<prefix>_…`): identifies it, proves nothing. */
    prefix: text("prefix").notNull().unique(),
    /** SHA-256 (hex) of the whole key. The key itself is never stored. */
    hash: text("hash").notNull(),
    name: text("name").notNull(),
    createdAt: integer("created_at").notNull(),
    revokedAt: integer("revoked_at"),
  },
  (t) => [index("api_keys_tenant_idx").on(t.tenantId)],
);

/**
 * The session index. No foreign key to `tenants`: the local dev tenant exists only in
 * `.dev.vars`, and the index is a rebuildable projection, not a source of truth.
 */
export const sessions = sqliteTable(
  "sessions",
  {
    id: text("id").notNull(),
    tenantId: text("tenant_id").notNull(),
    title: text("title").notNull(),
    status: text("status").notNull(),
    model: text("model").notNull(),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
    /** The stream offset this row reflects; a replay never moves it backwards. */
    lastOffset: integer("last_offset").notNull(),
    /** How many tool calls await a decision (the list itself is the live state's `pendingApprovals`). */
    pendingApprovalCount: integer("pending_approvals").notNull().default(0),
    lastError: text("last_error"),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.id] }),
    index("sessions_tenant_created_idx").on(t.tenantId, t.createdAt, t.id),
    index("sessions_tenant_status_created_idx").on(t.tenantId, t.status, t.createdAt),
  ],
);

export type TenantRow = typeof tenants.$inferSelect;
export type ApiKeyRow = typeof apiKeys.$inferSelect;
export type SessionRow = typeof sessions.$inferSelect;
export type NewSessionRow = typeof sessions.$inferInsert;
